"""DNSCrypt listeners side by side with real dnsdist 1.7.3, through the tests' own DNSCrypt
client: the same key files (made by dnsdist and by pydist, each served by both), the same
certificate TXT answer byte for byte, the same answers over UDP and TCP for both exchange
versions, the same padding (fixed client nonces give the same encrypted lengths), the same
truncation, the same fate for bad input, and the same counters, console texts and metrics.

dnsdist 1.7.3 cannot be the client side: it has no DNSCrypt towards backends (newServer has no
such option), so the client here is tests/helpers/dnscrypt.py, itself checked by dnsdist.
"""
from __future__ import annotations

import os
import re
import socket
import struct
from pathlib import Path
from typing import Any

import dns.message
import dnslib
import pytest

from pydist.dnscrypt import crypto
from pydist.dnscrypt.cert import DNSCryptCert
from tests.conftest import ResponderFactory, Starter
from tests.helpers.conf import KEY
from tests.helpers.dnscrypt import DNSCryptClient, recv_exact
from tests.helpers.pydist_proc import IMPLS, run_cli
from tests.helpers.responder import default_handler
from tests.helpers.web import get_json, metric_samples, request

PROVIDER = "2.dnscrypt-cert.test"
GEN_DNSDIST = """
generateDNSCryptProviderKeys("{d}/prov.pub", "{d}/prov.key")
generateDNSCryptCertificate("{d}/prov.key", "{d}/r1.cert", "{d}/r1.key", 1, os.time() - 600, os.time() + 86400)
generateDNSCryptCertificate("{d}/prov.key", "{d}/r2.cert", "{d}/r2.key", 2, os.time() - 600, os.time() + 86400, DNSCryptExchangeVersion.VERSION2)
generateDNSCryptCertificate("{d}/prov.key", "{d}/old.cert", "{d}/old.key", 9, 0, 100)
"""
GEN_PYDIST = """
generateDNSCryptCertificate("{d}/prov.key", "{d}/r3.cert", "{d}/r3.key", 3, os.time() - 600, os.time() + 86400, DNSCryptExchangeVersion.VERSION2)
generateDNSCryptProviderKeys("{d}/prov2.pub", "{d}/prov2.key")
generateDNSCryptCertificate("{d}/prov2.key", "{d}/r4.cert", "{d}/r4.key", 4, os.time() - 600, os.time() + 86400)
generateDNSCryptCertificate("{d}/prov.key", "{d}/r5.cert", "{d}/r5.key", 5, os.time() - 600, os.time() + 86400)
"""
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
webserver("127.0.0.1:{portweb}")
setWebserverConfig({apiKey="key1"})
newServer({address="{backend}"})
getPool(""):setCache(newPacketCache(1000))
addDNSCryptBind("127.0.0.1:{portdc}", "PROVIDER", {"D/r1.cert", "D/r2.cert", "D/r3.cert", "D/old.cert"}, {"D/r1.key", "D/r2.key", "D/r3.key", "D/old.key"})
addDNSCryptBind("0.0.0.0:{portdc2}", "2.Other.TEST.", "D/r4.cert", "D/r4.key", {reusePort=true})
addAction("spoof.test.", SpoofAction("192.0.2.99"))
addAction("nx.test.", RCodeAction(DNSRCode.NXDOMAIN))
""".replace("KEY", KEY).replace("PROVIDER", PROVIDER)
STATS = ("queries", "responses", "noncompliant-queries", "cache-hits", "cache-misses",
         "rdqueries", "empty-queries", "frontend-noerror", "frontend-nxdomain", "acl-drops",
         "self-answered", "latency-count")
# how long connections lasted, and how many overlapped (dnsdist's worker threads may see a
# client's close after the next connection is accepted)
TIMING = ("tcpAvgConnectionDuration", "tcpAvgQueriesPerConnection", "tcpMaxConcurrentConnections")
CONSOLE = ("showDNSCryptBinds()", "showBinds()", "getDNSCryptBindCount()",
           "getDNSCryptBind(0):printCertificates()", "getDNSCryptBind(1):getProviderName()",
           "getDNSCryptBind(0):getCertificate(2):getSerial()",
           "getDNSCryptBind(0):getCertificate(1):getTSEnd() - "
           "getDNSCryptBind(0):getCertificate(1):getTSStart()",
           "getDNSCryptBind(0):getCertificate(1):getMagic()",
           "getDNSCryptBind(0):getCertificate(0):getResolverPublicKey() == "
           "getDNSCryptBind(0):getCertificatePair(0):getCertificate():getResolverPublicKey() "
           "and 'same' or 'different'",
           "#getDNSCryptBind(0):getCertificatePairs()", "getDNSCryptBind(0)",
           "getDNSCryptBind(7)", "getDNSCryptBind(0):getCertificatePair(1):isActive()",
           "getDNSCryptBind(0):getCertificate(9)", "getDNSCryptBind(0):markActive(1)",
           "getDNSCryptBind(0):markInactive(7)", "getDNSCryptBind(0):removeInactiveCertificate(2)",
           "getDNSCryptBind(0):getCertificate('a')",
           'addDNSCryptBind("127.0.0.1:1", "x", "a", "b")',
           'printDNSCryptProviderFingerprint("D/prov.pub")',
           'printDNSCryptProviderFingerprint("D/missing.pub")', "DNSCryptExchangeVersion")


def big_handler() -> Any:
    """The default answers, and 30 A records below big.test. (more than a padded query)."""
    base = default_handler()

    def handle(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord | None:
        if str(q.q.qname).endswith("big.test."):
            r = q.reply()
            for i in range(30):
                r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.A, ttl=300,
                                       rdata=dnslib.A(f"192.0.2.{i}")))
            return r
        return base(q, transport)
    return handle


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """Provider keys and certificates made by dnsdist, then more made by pydist with them."""
    d = tmp_path / "keys"
    d.mkdir()
    for impl, text in (("dnsdist", GEN_DNSDIST), ("pydist", GEN_PYDIST)):
        conf = tmp_path / f"gen-{impl}.conf"
        conf.write_text(text.replace("{d}", str(d)))
        res = run_cli(impl, ["--check-config", "-C", str(conf)])
        assert res.returncode == 0, res.stdout + res.stderr
    sizes = {p.name: p.stat().st_size for p in d.iterdir()}
    assert sizes["prov.pub"] == sizes["prov2.pub"] == 32
    assert sizes["prov.key"] == sizes["prov2.key"] == 64
    assert sizes["r1.cert"] == sizes["r3.cert"] == 124 and sizes["r3.key"] == 32
    return d


def console(proc: Any, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout + res.stderr


def normalized(text: str, proc: Any) -> str:
    """Ports, this run's key directory and C frame addresses out of a console text."""
    for name in ("portdc", "portdc2", "port"):
        text = text.replace(str(proc.values[name]), name.upper())
    return re.sub(r"\[C\]: at 0x[0-9a-f]+", "[C]: at ADDR", text)


def raw_tcp(where: tuple[str, int], *packets: bytes) -> list[bytes | None]:
    """Send framed packets on one connection, one at a time; what each got (None: closed)."""
    out: list[bytes | None] = []
    with socket.create_connection(where, timeout=2) as s:
        for packet in packets:
            try:
                s.sendall(struct.pack("!H", len(packet)) + packet)
                head = recv_exact(s, 2)
                out.append(None if head is None else recv_exact(s, struct.unpack("!H", head)[0]))
            except (TimeoutError, ConnectionError):
                out.append(None)
    return out


def records(rrsets: list) -> list[str]:
    """The records without their TTL (a cache hit may cross a second boundary)."""
    return [re.sub(r" \d+ IN ", " IN ", rr.to_text()) for rr in rrsets]


def summary(reply: Any) -> tuple:
    m = reply.message
    return (m.rcode(), m.flags, records(m.answer), reply.size, reply.padding)


def battery(client: DNSCryptClient, certs: list[DNSCryptCert]) -> dict[str, Any]:
    """Everything one implementation answers; fixed nonces keep the encrypted sizes comparable."""
    out: dict[str, Any] = {}
    raw = client.exchange(dns.message.make_query(PROVIDER.upper(), "TXT").to_wire())
    out["cert-answer"] = raw[2:] if raw else None
    for cert in certs:
        for tcp in (False, True):
            tag = f"{cert.serial}-{'tcp' if tcp else 'udp'}"
            for i, name in enumerate(("a.example.test.", "a.example.test.", "spoof.test.",
                                      "x.nx.test.", "big.test.")):
                q = dns.message.make_query(name, "A")
                nonce = bytes([cert.serial, tcp, i]) * 4
                packet, _ = client.encrypt(q.to_wire(), cert, tcp, nonce=nonce)
                got = client.exchange(packet, tcp)
                out[f"{tag}-{i}-{name}"] = got and summary(client.decrypt(got, cert, nonce))
    cert = certs[0]
    wire = dns.message.make_query("pad.example.test.", "A").to_wire()
    for pad in (512, 1024):
        packet, nonce = client.encrypt(wire, cert, pad_to=pad, nonce=b"P" * 12)
        out[f"pad-{pad}"] = summary(client.decrypt(client.exchange(packet), cert, nonce))
    out.update(bad_input(client, cert))
    return out


def bad_input(client: DNSCryptClient, cert: DNSCryptCert) -> dict[str, Any]:
    """Bad magic, wrong key, short and garbage packets, bad padding: what comes back."""
    wire = dns.message.make_query("bad.example.test.", "A").to_wire()
    packet, _ = client.encrypt(wire, cert)
    flipped = bytearray(packet)
    flipped[100] ^= 1
    key = crypto.shared_key(cert.version, cert.resolver_public_key, client.secret)
    nonce = b"B" * 12

    def sealed(body: bytes) -> bytes:
        return cert.client_magic + client.public + nonce + crypto.seal(
            cert.version, key, nonce + bytes(12), body)
    qr = bytearray(wire)
    qr[2] |= 0x80
    empty = bytearray(wire[:12])
    empty[5] = 0
    udp = {
        "short": b"\x00" * 5, "header-size": os.urandom(20), "garbage": os.urandom(300),
        "bad-magic": b"XXXXXXXX" + packet[8:], "flipped": bytes(flipped),
        "wrong-key": packet[:8] + os.urandom(32) + packet[40:],
        "under-256": client.encrypt(wire, cert, pad_to=len(wire) + 1)[0],
        "plain-query": wire, "other-txt": dns.message.make_query("x.test.", "TXT").to_wire(),
        "no-padding": sealed(wire + bytes(200)), "decrypted-short": sealed(b"\x12\x34\x80"
                                                                           + bytes(200)),
        "qr-set": client.encrypt(bytes(qr), cert)[0],
    }
    out: dict[str, Any] = {f"udp-{k}": client.exchange(v) for k, v in udp.items()}
    empty_packet, _ = client.encrypt(bytes(empty), cert, nonce=b"E" * 12)
    got = client.exchange(empty_packet)
    out["udp-empty"] = got and got[2:]           # NOTIMP, in clear
    cert_request = dns.message.make_query(PROVIDER, "TXT").to_wire()
    query, qnonce = client.encrypt(wire, cert, True)
    tcp = raw_tcp(client.where, cert_request, query)
    out["tcp-cert-then-query"] = (tcp[0], tcp[1] and records(
        client.decrypt(tcp[1], cert, qnonce).message.answer))
    out["tcp-garbage"] = raw_tcp(client.where, os.urandom(100), query)
    out["tcp-long-padding"] = raw_tcp(client.where,
                                      client.encrypt(wire, cert, True, pad_to=len(wire) + 300)[0])
    return out


def test_dnscrypt_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory,
                             keys: Path) -> None:
    backend = responder_factory(big_handler())
    conf = CONF.replace("D/", f"{keys}/")
    public = (keys / "prov.pub").read_bytes()
    client_keys = crypto.box_keypair()
    seen: dict[str, Any] = {}
    for impl in IMPLS:
        proc = start_proc(impl, conf, {"backend": backend.address})
        client = DNSCryptClient(proc.addr("portdc"), PROVIDER, public)
        client.public, client.secret = client_keys
        certs = client.fetch_certs()
        # a wildcard listener: answers leave from the address each query was sent to
        other = DNSCryptClient(("127.0.0.2", proc.addr("portdc2")[1]), "2.other.test",
                               (keys / "prov2.pub").read_bytes())
        answers = battery(client, certs)
        other_certs = other.fetch_certs()
        for tcp in (False, True):
            reply = other.query(dns.message.make_query("w.example.test.", "A"), other_certs[0],
                                tcp)
            answers[f"other-bind-{tcp}"] = reply and records(reply.message.answer)
        answers["other-bind"] = [c.serial for c in other_certs]
        texts = {cmd: normalized(console(proc, cmd.replace("D/", f"{keys}/")), proc)
                 for cmd in CONSOLE}
        stats = dict(re.findall(r"([a-z0-9-]+)\s+(\d+)", console(proc, "dumpStats()")))
        _, _, body = request(int(proc.values["portweb"]), "/metrics", {"X-API-Key": "key1"})
        frontends = {normalized(k, proc): v for k, v in metric_samples(body.decode()).items()
                     if "DNSCrypt" in k and ("_queries" in k or "_responses" in k)}
        api = get_json(int(proc.values["portweb"]), "/api/v1/servers/localhost",
                       {"X-API-Key": "key1"})
        frontends["api"] = normalized(str([
            {k: v for k, v in f.items() if k not in TIMING}
            for f in api["frontends"] if "DNSCrypt" in f["type"]]), proc)
        grepq = sorted(re.findall(r"(DNSCrypt\w+|Do\w+)\s.*?(\S+\.)\s+A\s",
                                  console(proc, 'grepq("test", 100)')))
        seen[impl] = ([c.serial for c in certs], answers, texts,
                      {k: stats[k] for k in STATS}, frontends, grepq)
    py, dd = seen["pydist"], seen["dnsdist"]
    assert py[0] == dd[0] == [1, 2, 3]           # the expired certificate is not listed
    assert dd[1]["1-udp-4-big.test."][1] & 0x0200 and dd[1]["1-tcp-4-big.test."][1] & 0x0200 == 0
    assert dd[1]["udp-empty"] is not None and dd[1]["tcp-cert-then-query"][0] == b""
    for key, value in dd[1].items():
        assert py[1][key] == value, key
    for cmd, text in dd[2].items():
        assert py[2][cmd] == text, (cmd, py[2][cmd], text)
    assert py[3] == dd[3]
    assert py[4] == dd[4] and len(dd[4]) == 9 and "TCP (DNSCrypt)" in dd[4]["api"]
    assert py[5] == dd[5] and ("DNSCryptTCP", "a.example.test.") in dd[5]


ROTATION = (  # (console line, then what to observe)
    ('getDNSCryptBind(0):generateAndLoadInMemoryCertificate("D/prov.key", 10, os.time() - 60, '
     'os.time() + 3600, DNSCryptExchangeVersion.VERSION2)'),
    ('getDNSCryptBind(0):generateAndLoadInMemoryCertificate("D/prov.key", 10, os.time() - 60, '
     'os.time() + 3600)'),
    'getDNSCryptBind(0):generateAndLoadInMemoryCertificate("D/missing.key", 11, 0, 2000000000)',
    "getDNSCryptBind(0):markInactive(1)",
    "getDNSCryptBind(0):removeInactiveCertificate(1)",
    'getDNSCryptBind(0):loadNewCertificate("D/r5.cert", "D/r5.key", false)',
    'getDNSCryptBind(0):loadNewCertificate("D/missing.cert", "D/r5.key")',
    "getDNSCryptBind(0):markActive(5)",
    "getDNSCryptBind(0):reloadCertificates()",
)


def test_key_rotation_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory,
                                 keys: Path) -> None:
    """generateAndLoadInMemoryCertificate / loadNewCertificate for the next serial, markInactive
    (no longer advertised, still served), removeInactiveCertificate (no longer served),
    markActive, reloadCertificates (back to the files): each step seen by a client."""
    conf = CONF.replace("D/", f"{keys}/")
    public = (keys / "prov.pub").read_bytes()
    r1 = DNSCryptCert((keys / "r1.cert").read_bytes())
    r5 = DNSCryptCert((keys / "r5.cert").read_bytes())
    seen: dict[str, list] = {}
    for impl in IMPLS:
        proc = start_proc(impl, conf, {"backend": responder_factory().address})
        client = DNSCryptClient(proc.addr("portdc"), PROVIDER, public)
        steps = []

        def answered(cert: DNSCryptCert, client: DNSCryptClient = client) -> bool:
            try:
                return client.query(dns.message.make_query("r.example.test.", "A"), cert) \
                    is not None
            except AssertionError:
                return False
        for line in ROTATION:
            text = console(proc, line.replace("D/", f"{keys}/"))
            certs = client.fetch_certs()      # each one checked against the provider key
            newest = certs[-1]
            table = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "DATE",
                           console(proc, "getDNSCryptBind(0):printCertificates()"))
            steps.append((normalized(text, proc), [c.serial for c in certs], answered(r1),
                          answered(r5), answered(newest), table))
        seen[impl] = steps
    assert seen["pydist"] == seen["dnsdist"]
    serials = [s[1] for s in seen["dnsdist"]]
    assert serials[0] == [1, 2, 3, 10] and serials[3] == [2, 3, 10]
    assert [s[2] for s in seen["dnsdist"]][3:5] == [True, False]    # inactive served, removed not


LOGGING = """setSecurityPollSuffix("")
newServer({address="{backend}"})
addDNSCryptBind("127.0.0.1:{portdc}", "PROVIDER", "D/r1.cert", "D/r1.key")
rl = newRemoteLogger("127.0.0.1:COLLECTOR")
addAction(AllRule(), RemoteLogAction(rl))
fs = newFrameStreamTcpLogger("127.0.0.1:FSTRM")
addAction(AllRule(), DnstapLogAction("ident", fs))
addAction(AllRule(), LuaAction(function(dq)
  local answer = {["DNSCrypt UDP"]="192.0.2.5", ["DNSCrypt TCP"]="192.0.2.6"}
  return DNSAction.Spoof, answer[dq:getProtocol()] or "192.0.2.7"
end))
""".replace("PROVIDER", PROVIDER)


def test_loggers_name_the_dnscrypt_transport(start_proc: Starter,
                                             responder_factory: ResponderFactory,
                                             keys: Path) -> None:
    """The protobuf socketProtocol and the dnstap socket_protocol of DNSCrypt queries, and
    dq:getProtocol()."""
    from tests.helpers.pbdecode import decode
    from tests.helpers.pydist_proc import poll_until
    from tests.integration.test_dnstap_diff import FrameStreamReader
    from tests.integration.test_remotelog_diff import Collector
    seen = {}
    for impl in IMPLS:
        collector = Collector()
        fstrm = socket.create_server(("127.0.0.1", 0))
        reader = FrameStreamReader(fstrm)
        conf = LOGGING.replace("D/", f"{keys}/").replace("COLLECTOR", str(collector.port)) \
            .replace("FSTRM", str(fstrm.getsockname()[1]))
        proc = start_proc(impl, conf, {"backend": responder_factory().address})
        client = DNSCryptClient(proc.addr("portdc"), PROVIDER, (keys / "prov.pub").read_bytes())
        cert = client.fetch_certs()[0]
        spoofed = []
        for tcp in (False, True):
            reply = client.query(dns.message.make_query("log.example.", "A"), cert, tcp)
            assert reply is not None
            spoofed.append(records(reply.message.answer))
        poll_until(lambda c=collector, r=reader: len(c.messages) >= 2 and len(r.frames) >= 2)
        seen[impl] = ([dict(decode(m))[5] for m in collector.messages],
                      [dict(dict(decode(f, {14: {}}))[14])[3] for f in reader.frames], spoofed)
        fstrm.close()
    assert seen["pydist"] == seen["dnsdist"]
    assert seen["dnsdist"][0] == [5, 6] and "192.0.2.6" in seen["dnsdist"][2][1][0]


PROXIED = """setSecurityPollSuffix("")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
newServer({address="{backend}"})
addDNSCryptBind("127.0.0.1:{portdc}", "PROVIDER", "D/r2.cert", "D/r2.key")
setProxyProtocolACL({"127.0.0.0/8"})
addAction(ProxyProtocolValueRule(2, "tlv"), SpoofAction("192.0.2.99"))
""".replace("KEY", KEY).replace("PROVIDER", PROVIDER)


def test_proxy_protocol_before_dnscrypt(start_proc: Starter, responder_factory: ResponderFactory,
                                        keys: Path) -> None:
    """From a setProxyProtocolACL source the header comes first, then DNSCrypt: the proxied
    client is the query's source, its TLVs reach the rules, a missing header drops."""
    from pydist.dns.proxyprotocol import proxy_header
    seen = {}
    for impl in IMPLS:
        proc = start_proc(impl, PROXIED.replace("D/", f"{keys}/"),
                          {"backend": responder_factory().address})
        where = proc.addr("portdc")
        client = DNSCryptClient(where, PROVIDER, (keys / "prov.pub").read_bytes())
        cert_request = dns.message.make_query(PROVIDER, "TXT").to_wire()
        header = proxy_header(("192.0.2.10", 5555), where, False)
        raw = client.exchange(header + cert_request)
        cert = DNSCryptCert(raw[-124:])
        out: dict[str, Any] = {"cert": raw[2:]}
        for name, prefix in (("plain", header), ("tlv", proxy_header(
                ("192.0.2.10", 5555), where, False, [(2, b"tlv")])), ("none", b"")):
            packet, nonce = client.encrypt(dns.message.make_query("p.test.", "A").to_wire(), cert)
            got = client.exchange(prefix + packet)
            out[name] = got and records(client.decrypt(got, cert, nonce).message.answer)
        packet, nonce = client.encrypt(dns.message.make_query("t.test.", "A").to_wire(), cert,
                                       True)
        with socket.create_connection(where, timeout=2) as s:
            s.sendall(proxy_header(("192.0.2.11", 6666), where, True)
                      + struct.pack("!H", len(packet)) + packet)
            head = recv_exact(s, 2)
            body = head and recv_exact(s, struct.unpack("!H", head)[0])
            out["tcp"] = body and records(client.decrypt(body, cert, nonce).message.answer)
        stats = dict(re.findall(r"([a-z0-9-]+)\s+(\d+)", console(proc, "dumpStats()")))
        out["stats"] = {k: stats[k] for k in ("queries", "proxy-protocol-invalid",
                                              "noncompliant-queries", "self-answered")}
        out["clients"] = sorted(set(re.findall(r"(192\.0\.2\.1\d):\d+\s+DNSCrypt",
                                               console(proc, 'grepq("test")'))))
        seen[impl] = out
    assert seen["pydist"] == seen["dnsdist"]
    assert seen["dnsdist"]["none"] is None and "192.0.2.99" in seen["dnsdist"]["tlv"][0]
    assert seen["dnsdist"]["clients"] == ["192.0.2.10", "192.0.2.11"]


@pytest.mark.parametrize("impl", IMPLS)
def test_pipelined_tcp_queries(impl: str, start_proc: Starter,
                               responder_factory: ResponderFactory, keys: Path) -> None:
    """Several DNSCrypt queries written at once on one connection of a maxInFlight listener:
    each answer sealed for its own query (found by its client nonce)."""
    conf = PROXIED.replace('setProxyProtocolACL({"127.0.0.0/8"})', "").replace(
        '"D/r2.key")', '"D/r2.key", {maxInFlight=8})').replace("D/", f"{keys}/")
    proc = start_proc(impl, conf, {"backend": responder_factory().address})
    client = DNSCryptClient(proc.addr("portdc"), PROVIDER, (keys / "prov.pub").read_bytes())
    cert = client.fetch_certs()[0]
    sent, stream = {}, b""
    for i in range(6):
        name = f"q{i}.pipe.test."
        packet, nonce = client.encrypt(dns.message.make_query(name, "A").to_wire(), cert, True)
        sent[nonce] = name
        stream += struct.pack("!H", len(packet)) + packet
    got = {}
    with socket.create_connection(proc.addr("portdc"), timeout=3) as s:
        s.sendall(stream)
        for _ in sent:
            head = recv_exact(s, 2)
            assert head is not None
            body = recv_exact(s, struct.unpack("!H", head)[0])
            assert body is not None
            nonce = body[8:20]
            got[nonce] = str(client.decrypt(body, cert, nonce).message.question[0].name)
    assert got == sent
