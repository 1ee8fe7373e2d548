"""addTLSLocal: DoT clients (kdig +tls, dnspython) get answers through the shared packet path,
RSA and ECDSA certificates, certificates reloaded at runtime, session resumption."""
from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from tests.conftest import BOTH, Starter, available_impls
from tests.helpers.dot import (
    CertSet,
    client_context,
    dot_query,
    frontend_counters,
    make_cert_set,
    peer_certificate,
    stapled_ocsp,
)
from tests.helpers.pydist_proc import poll_until, query, run_cli
from tools.tls_certs import make_ocsp_response

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
addTLSLocal("127.0.0.1:{portdot}", {certs}, {keys}{opts})
newServer{address="{backend}"}
pc = newPacketCache(1000)
getPool(""):setCache(pc)
""".replace("KEY", KEY)


@pytest.fixture
def certs(tmp_path: Path) -> CertSet:
    return make_cert_set(tmp_path / "certs")


def _conf(certs_arg: str, keys_arg: str, opts: str = "") -> str:
    return CONF.replace("{certs}", certs_arg).replace("{keys}", keys_arg).replace("{opts}", opts)


def _start(start_proc: Starter, impl: str, certs: CertSet, backend: str, opts: str = ""):
    return start_proc(impl, _conf(f'"{certs.cert}"', f'"{certs.key}"', opts),
                      {"backend": backend})


def console(proc, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout + res.stderr


@pytest.mark.parametrize("impl", BOTH)
def test_dnspython_and_kdig_get_answers(impl: str, start_proc: Starter, responder, certs) -> None:
    proc = _start(start_proc, impl, certs, responder.address)
    assert proc.wait_for("Listening on 127.0.0.1:.* for TLS")
    dot = proc.addr("portdot")
    ans = dot_query(dot, "dnspython.example.", certs.ca_path)
    assert ans is not None and ans.answer[0][0].address == "192.0.2.1"
    kdig = shutil.which("kdig")
    assert kdig, "kdig (knot-dnsutils) is needed"
    out = subprocess.run([kdig, "+tls", f"+tls-ca={certs.ca_path}", "+tls-hostname=dot.test",
                          "@127.0.0.1", "-p", str(dot[1]), "kdig.example.", "A", "+short"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "192.0.2.1", out.stdout + out.stderr
    assert "TCP (DNS over TLS)" in console(proc, "showBinds()")
    contexts = console(proc, "showTLSContexts()").splitlines()
    assert contexts[0] == ("#   Address              # ticket keys  Rotation delay "
                           "Next rotation        ")
    assert re.fullmatch(rf"0   127\.0\.0\.1:{dot[1]}\s+1\s+43200\s+"
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", contexts[1]), contexts


def test_dot_shares_the_tcp_cache_key(start_proc: Starter, responder, certs) -> None:
    """DoT queries are cached under the TCP key (facts §4.1): TCP then DoT is one miss."""
    proc = _start(start_proc, "pydist", certs, responder.address)
    assert query(proc.addr(), "shared.example.", tcp=True) is not None
    assert dot_query(proc.addr("portdot"), "shared.example.", certs.ca_path) is not None
    assert responder.count("shared.example.") == 1
    assert dot_query(proc.addr("portdot"), "other.example.", certs.ca_path) is not None
    assert query(proc.addr(), "other.example.", tcp=False) is not None
    assert responder.count("other.example.") == 2       # UDP has its own key


def test_rsa_and_ecdsa_pairs(start_proc: Starter, responder, certs: CertSet) -> None:
    """Two pairs on one listener: each client gets the certificate its ciphers can use."""
    ec = certs.issue("ecdsa", kind="ecdsa")
    proc = start_proc("pydist", _conf(f'{{"{certs.cert}", "{ec.cert_path}"}}',
                                      f'{{"{certs.key}", "{ec.key_path}"}}'),
                      {"backend": responder.address})
    seen = {}
    for alg in ("ECDSA", "RSA"):
        ctx = client_context(certs.ca_path)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(f"ECDHE-{alg}-AES128-GCM-SHA256")
        seen[alg] = peer_certificate(proc.addr("portdot"), ctx)
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec as ec_keys
    from cryptography.hazmat.primitives.asymmetric import rsa
    assert isinstance(x509.load_der_x509_certificate(seen["ECDSA"]).public_key(),
                      ec_keys.EllipticCurvePublicKey)
    assert isinstance(x509.load_der_x509_certificate(seen["RSA"]).public_key(), rsa.RSAPublicKey)


@pytest.mark.parametrize("impl", BOTH)
def test_certificates_reloaded_at_runtime(impl: str, start_proc: Starter, responder,
                                          certs: CertSet) -> None:
    """loadNewCertificatesAndKeys, then reloadAllCertificates after the files were renewed."""
    proc = _start(start_proc, impl, certs, responder.address)
    dot = proc.addr("portdot")
    ctx = client_context(certs.ca_path)
    first = peer_certificate(dot, ctx)
    new = certs.issue("new")
    out = console(proc, f'getTLSFrontend(0):loadNewCertificatesAndKeys("{new.cert_path}", '
                        f'"{new.key_path}")')
    assert "Error" not in out, out
    second = peer_certificate(dot, ctx)
    assert second != first
    renewed = certs.issue("new")             # a renewal rewrites the same files
    assert console(proc, "reloadAllCertificates()").strip() == ""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    assert peer_certificate(dot, ctx) == renewed.cert.public_bytes(serialization.Encoding.DER)
    assert dot_query(dot, "after-reload.example.", certs.ca_path) is not None
    bad = console(proc, 'getTLSFrontend(0):loadNewCertificatesAndKeys("/nonexistent.pem", '
                        '"/nonexistent.key")')
    assert ("Caught exception: An error occurred while trying to load the TLS server "
            "certificate file: /nonexistent.pem") in bad
    assert peer_certificate(dot, ctx) == renewed.cert.public_bytes(serialization.Encoding.DER)
    _ = x509


@pytest.mark.parametrize("impl", BOTH)
def test_session_resumption_and_ticket_rotation(impl: str, start_proc: Starter, responder,
                                                certs: CertSet) -> None:
    """A client resumes with its ticket; after rotateTicketsKey() the listener still serves."""
    proc = _start(start_proc, impl, certs, responder.address)
    dot = proc.addr("portdot")
    ctx = client_context(certs.ca_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2    # the session is ready after the handshake
    import socket
    with socket.create_connection(dot, timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="dot.test") as s:
            session = s.session
            assert not s.session_reused
    with socket.create_connection(dot, timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="dot.test", session=session) as s:
            assert s.session_reused
    # dnsdist counts from its TCP worker thread, a moment after the client is done
    poll_until(lambda: (frontend_counters(proc)["TLS new sessions"],
                        frontend_counters(proc)["TLS Resumptions"]) == ("1", "1"))
    assert console(proc, "getTLSFrontend(0):rotateTicketsKey()").strip() == ""
    assert dot_query(dot, "rotated.example.", certs.ca_path) is not None
    poll_until(lambda: frontend_counters(proc)["TLS 1.3"] == "1")


def test_key_log_file_and_ocsp_stapling(start_proc: Starter, responder, certs: CertSet,
                                        tmp_path: Path) -> None:
    """keyLogFile gets NSS key log lines; ocspResponses are stapled for clients that ask."""
    keylog, ocsp = tmp_path / "keys.log", tmp_path / "ocsp.der"
    response = make_ocsp_response(certs.ca, certs.server)
    ocsp.write_bytes(response)
    proc = _start(start_proc, "pydist", certs, responder.address,
                  f', {{keyLogFile="{keylog}", ocspResponses={{"{ocsp}"}}}}')
    stapled = stapled_ocsp(proc.addr("portdot"))
    assert stapled == [response]
    poll_until(lambda: keylog.exists() and b"CLIENT_TRAFFIC_SECRET_0" in keylog.read_bytes())


def test_ticket_key_file_checked_when_serving(tmp_path: Path, certs: CertSet) -> None:
    """As dnsdist 1.7.3: an unreadable ticketKeyFile is fatal at startup, not in check mode."""
    conf = tmp_path / "tk.conf"
    conf.write_text(f'setSecurityPollSuffix("")\naddTLSLocal("127.0.0.1:1", "{certs.cert}", '
                    f'"{certs.key}", {{ticketKeyFile="/nonexistent/tickets.key"}})\n')
    for impl in ("pydist",) + (("dnsdist",) if shutil.which("dnsdist") else ()):
        assert run_cli(impl, ["--check-config", "-C", str(conf)]).returncode == 0
        res = run_cli(impl, ["--supervised", "--disable-syslog", "-C", str(conf)])
        assert res.returncode == 1, impl
        assert ("Fatal error: Unable to load a ticket key from the OpenSSL tickets key file"
                in res.stdout), (impl, res.stdout)


def test_missing_certificate_is_fatal_when_serving_only(tmp_path: Path) -> None:
    """As dnsdist 1.7.3: --check-config says OK, serving exits 1 with the file named."""
    conf = tmp_path / "missing.conf"
    conf.write_text('setSecurityPollSuffix("")\naddTLSLocal("127.0.0.1:1", '
                    '"/nonexistent/cert.pem", "/nonexistent/key.pem")\n')
    for impl in ("pydist",) + (("dnsdist",) if shutil.which("dnsdist") else ()):
        res = run_cli(impl, ["--check-config", "-C", str(conf)])
        assert res.returncode == 0 and "OK!" in res.stdout, (impl, res.stdout)
        res = run_cli(impl, ["--supervised", "--disable-syslog", "-C", str(conf)])
        assert res.returncode == 1, impl
        assert ("Fatal error: An error occurred while trying to load the TLS server certificate "
                "file: /nonexistent/cert.pem") in res.stdout, (impl, res.stdout)


def test_mismatched_lists_and_bad_version(tmp_path: Path, certs: CertSet) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text(f'setSecurityPollSuffix("")\naddTLSLocal("127.0.0.1:1", '
                    f'{{"{certs.cert}"}}, {{"{certs.key}", "{certs.key}"}})\n')
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 0
    assert "Error, mismatching number of certificates and keys in call to addTLSLocal()!" \
        in res.stdout
    conf.write_text(f'setSecurityPollSuffix("")\naddTLSLocal("127.0.0.1:1", "{certs.cert}", '
                    f'"{certs.key}", {{minTLSVersion="tls9"}})\n')
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 1
    assert "Caught exception: Unknown TLS version 'tls9" in res.stdout
    _ = poll_until


def test_console_tables_match_dnsdist(start_proc: Starter, responder, certs: CertSet) -> None:
    """showTLSErrorCounters, showTCPStats and showBinds: dnsdist 1.7.3's text, byte for byte
    (ports normalised; showTLSContexts' next rotation time aside)."""
    outputs = {}
    for impl in available_impls():
        proc = _start(start_proc, impl, certs, responder.address)
        text = "".join(console(proc, c) for c in ("showTLSErrorCounters()", "showTCPStats()",
                                                  "showBinds()", "showTLSContexts()"))
        for name in ("port", "portdot", "portctl"):
            text = text.replace(str(proc.values[name]), name.upper())
        text = text.replace(responder.address, "BACKEND")
        outputs[impl] = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "TIME", text)
        assert "TLS Resumptions" in outputs[impl] and "No shared cipher" in outputs[impl]
    if len(outputs) == 2:
        assert outputs["pydist"] == outputs["dnsdist"]


@pytest.mark.parametrize("impl", BOTH)
def test_rules_see_dot_queries_as_tcp_and_dot(impl: str, start_proc: Starter, responder,
                                              certs: CertSet) -> None:
    """Query rules run for DoT (the shared packet path): TCPRule matches it, and a Lua rule
    reads dq:getProtocol() == "DNS over TLS" (facts §10.2, §10.4)."""
    rules = ('addAction(AndRule({TCPRule(true), QNameRule("tcprule.example.")}), '
             'RCodeAction(DNSRCode.REFUSED))\n'
             'function isDoT(dq) if dq:getProtocol() == "DNS over TLS" then '
             'return DNSAction.Nxdomain, "" end return DNSAction.None, "" end\n'
             'addAction("proto.example.", LuaAction(isDoT))\n')
    proc = start_proc(impl, _conf(f'"{certs.cert}"', f'"{certs.key}"') + rules,
                      {"backend": responder.address})
    dot = proc.addr("portdot")
    refused = dot_query(dot, "tcprule.example.", certs.ca_path)
    assert refused is not None and refused.rcode() == 5
    nx = dot_query(dot, "proto.example.", certs.ca_path)
    assert nx is not None and nx.rcode() == 3
    plain = query(proc.addr(), "proto.example.", tcp=True)
    assert plain is not None and plain.rcode() == 0


def test_ipv6_listener(start_proc: Starter, responder, certs: CertSet) -> None:
    conf = _conf(f'"{certs.cert}"', f'"{certs.key}"') + \
        f'addTLSLocal("[::1]:{{portdot6}}", "{certs.cert}", "{certs.key}")\n'
    proc = start_proc("pydist", conf, {"backend": responder.address})
    proc.wait_for(r"Listening on \[::1\]:\d+ for TLS")
    ans = dot_query(("::1", int(proc.values["portdot6"])), "v6.example.", certs.ca_path)
    assert ans is not None and ans.answer[0][0].address == "192.0.2.1"
    assert console(proc, "getTLSFrontendCount()").strip() == "2"


def _sni_query(where: tuple[str, int], qname: str, ca_path: str, sni: str | None):
    """A DoT query sending `sni` (None: no SNI at all), the certificate checked by its CA only."""
    ctx = client_context(ca_path, hostname_check=False)
    q = dns.message.make_query(qname, "A")
    try:
        return dns.query.tls(q, where[0], port=where[1], timeout=3, ssl_context=ctx,
                             server_hostname=sni)
    except (dns.exception.Timeout, EOFError, OSError):
        return None


@pytest.mark.parametrize("impl", BOTH)
def test_sni_rule_and_dq_server_name(impl: str, start_proc: Starter, responder,
                                     certs: CertSet) -> None:
    """SNIRule compares the name the client sent, exactly; dq:getServerNameIndication()
    reads it ('' without SNI, and for plain TCP)."""
    rules = ('addAction(SNIRule("blocked.test"), RCodeAction(DNSRCode.REFUSED))\n'
             'function sni(dq) if dq:getServerNameIndication() == "lua.test" then '
             'return DNSAction.Nxdomain, "" end '
             'if dq:getServerNameIndication() == "" then return DNSAction.Spoof, "192.0.2.7" end '
             'return DNSAction.None, "" end\n'
             'addAction("sni.example.", LuaAction(sni))\n')
    proc = start_proc(impl, _conf(f'"{certs.cert}"', f'"{certs.key}"') + rules,
                      {"backend": responder.address})
    dot = proc.addr("portdot")
    rcodes = {sni: getattr(_sni_query(dot, "sni.example.", certs.ca_path, sni), "rcode",
                           lambda: None)()
              for sni in ("blocked.test", "BLOCKED.test", "lua.test", "dot.test")}
    assert rcodes == {"blocked.test": 5, "BLOCKED.test": 0, "lua.test": 3, "dot.test": 0}
    bare = _sni_query(dot, "sni.example.", certs.ca_path, None)
    assert bare is not None and [str(r[0]) for r in bare.answer] == ["192.0.2.7"]
    plain = query(proc.addr(), "sni.example.", tcp=True)
    assert plain is not None and [str(r[0]) for r in plain.answer] == ["192.0.2.7"]
