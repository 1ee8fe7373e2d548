"""Incoming proxy protocol (setProxyProtocolACL), pydist against real dnsdist 1.7.3: UDP
datagrams with valid, LOCAL, TLV-carrying, missing and broken headers; TCP with and without a
header; the counters each case moves, the client the rings record, and DoT, where 1.7.3 reads
the header from inside the TLS stream."""
from __future__ import annotations

import re
import socket
import ssl
import struct
from pathlib import Path

import dns.message
import pytest

from pydist.dns.proxyprotocol import LOCAL_HEADER, proxy_header
from tests.conftest import BOTH, Starter
from tests.helpers.conf import console_prelude
from tests.helpers.dot import client_context, make_cert_set
from tests.helpers.pydist_proc import poll_until, run_cli

CONF = console_prelude() + """\
setACL({"192.0.2.0/24" REAL})
setProxyProtocolACL({"127.0.0.0/8"})
addAction(ProxyProtocolValueRule(2, "tlv"), SpoofAction("192.0.2.99"))
addAction(ProxyProtocolValueRule(3), SpoofAction("192.0.2.98"))
addAction(AllRule(), SpoofAction("192.0.2.1"))
"""
COUNTERS = ("queries", "acl-drops", "proxy-protocol-invalid", "self-answered")
QUERY = dns.message.make_query("a.test.", "A").to_wire()


def _stats(proc) -> dict[str, int]:
    out = run_cli(proc.impl, ["-C", str(proc.conf), "-e", "dumpStats()"]).stdout
    return {k: int(v) for k, v in re.findall(r"(?:^|\s)([a-z-]+)\s+(\d+)", out) if k in COUNTERS}


def _udp(where: tuple[str, int], payload: bytes) -> list[str] | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(payload, where)
        try:
            m = dns.message.from_wire(s.recv(4096))
        except TimeoutError:
            return None
    return [str(x) for rr in m.answer for x in rr]


def _tcp(where: tuple[str, int], prefix: bytes) -> list[str] | None:
    with socket.create_connection(where, timeout=2) as s:
        s.sendall(prefix + struct.pack("!H", len(QUERY)) + QUERY)
        try:
            head = s.recv(2)
            if len(head) < 2:
                return None
            m = dns.message.from_wire(s.recv(struct.unpack("!H", head)[0]))
        except OSError:
            return None
    return [str(x) for rr in m.answer for x in rr]


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("real_in_acl", [False, True], ids=["proxy-not-in-acl", "proxy-in-acl"])
def test_headers_as_dnsdist(impl: str, real_in_acl: bool, start_proc: Starter,
                            responder) -> None:
    conf = CONF.replace(" REAL", ', "127.0.0.1"' if real_in_acl else "")
    proc = start_proc(impl, conf, {"backend": responder.address})
    where = proc.addr()
    dst = ("127.0.0.1", where[1])
    seen = [
        _udp(where, QUERY),                                                 # no header
        _udp(where, proxy_header(("192.0.2.10", 5555), dst, False) + QUERY),
        _udp(where, proxy_header(("198.51.100.1", 5555), dst, False) + QUERY),  # outside ACL
        _udp(where, LOCAL_HEADER + QUERY),
        _udp(where, proxy_header(("192.0.2.10", 5555), dst, False, [(2, b"tlv")]) + QUERY),
        _udp(where, proxy_header(("192.0.2.10", 5555), dst, False, [(3, b"")]) + QUERY),
        _udp(where, b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x50" + QUERY),     # cut short
    ]
    assert seen == [None, ["192.0.2.1"], ["192.0.2.1"], ["192.0.2.1"], ["192.0.2.99"],
                    ["192.0.2.98"], None]
    assert _stats(proc) == {"queries": 7, "acl-drops": 0, "proxy-protocol-invalid": 2,
                            "self-answered": 5}
    tcp = _tcp(where, proxy_header(("192.0.2.11", 6666), dst, True))
    plain = _tcp(where, b"")
    if real_in_acl:         # the real source passes the ACL, then the header is required
        assert (tcp, plain) == (["192.0.2.1"], None)
        expected = {"queries": 8, "acl-drops": 0, "proxy-protocol-invalid": 3,
                    "self-answered": 6}
    else:                   # 1.7.3 checks a TCP client's real address against the ACL first
        assert (tcp, plain) == (None, None)
        expected = {"queries": 7, "acl-drops": 2, "proxy-protocol-invalid": 2,
                    "self-answered": 5}
    poll_until(lambda: _stats(proc) == expected)
    rings = run_cli(impl, ["-C", str(proc.conf), "-e", "grepq('192.0.2.10')"]).stdout
    assert len(re.findall(r"192\.0\.2\.10:5555\s+DoUDP", rings)) == 3


@pytest.mark.parametrize("impl", BOTH)
def test_dot_reads_the_header_inside_tls(impl: str, start_proc: Starter, responder,
                                         tmp_path: Path) -> None:
    """Observed on 1.7.3: over DoT the header is read from the decrypted stream (a header sent
    before the handshake breaks it), and a DoT query without one closes the connection."""
    certs = make_cert_set(tmp_path / "certs")
    conf = CONF.replace(" REAL", ', "127.0.0.1"') + \
        f'addTLSLocal("127.0.0.1:{{portdot}}", "{certs.cert}", "{certs.key}")\n'
    proc = start_proc(impl, conf, {"backend": responder.address})
    dot = proc.addr("portdot")
    ctx = client_context(certs.ca_path)

    def ask(prefix: bytes) -> list[str] | None:
        with socket.create_connection(dot, timeout=3) as raw, \
                ctx.wrap_socket(raw, server_hostname="dot.test") as s:
            s.sendall(prefix + struct.pack("!H", len(QUERY)) + QUERY)
            try:
                head = s.recv(2)
            except (ssl.SSLError, OSError):
                return None
            if len(head) < 2:
                return None
            answer = dns.message.from_wire(s.recv(struct.unpack("!H", head)[0]))
        return [str(x) for rr in answer.answer for x in rr]
    assert ask(proxy_header(("192.0.2.12", 7777), dot, True, [(2, b"tlv")])) == ["192.0.2.99"]
    assert ask(b"") is None
    poll_until(lambda: _stats(proc)["proxy-protocol-invalid"] == 1)
