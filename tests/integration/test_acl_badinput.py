"""ACL drops, and malformed input that must never crash the process nor get an answer."""
from __future__ import annotations

import socket
import struct

import dns.message
import dns.rcode
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query
from tests.helpers.responder import Responder, default_handler

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
"""


def _start(impl: str, start_proc: Starter, responder: Responder, extra: str = "",
           ready: str | None = "auto") -> DnsdistProcess:
    return start_proc(impl, CONF + extra, {"backend": responder.address}, ready=ready)


def _tcp_closed_without_answer(where: tuple[str, int]) -> bool:
    """Connect, send a query; True when the server closes the connection without answering."""
    wire = dns.message.make_query("acl.example.", "A").to_wire()
    with socket.create_connection(where, timeout=2) as s:
        try:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            return s.recv(512) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


# --- ACL

@pytest.mark.parametrize("impl", BOTH)
def test_setacl_replaces_defaults(impl: str, start_proc: Starter, responder: Responder) -> None:
    """setACL without loopback: UDP dropped silently, TCP closed, backend never asked."""
    proc = _start(impl, start_proc, responder, 'setACL({"192.0.2.0/24"})\n')
    assert "ACL allowing queries from: 192.0.2.0/24" in proc.output
    assert query(proc.addr(), "acl.example.", timeout=1.0) is None
    assert _tcp_closed_without_answer(proc.addr())
    assert responder.count("acl.example.") == 0
    assert proc.alive()


@pytest.mark.parametrize("impl", BOTH)
def test_addacl_keeps_defaults(impl: str, start_proc: Starter, responder: Responder) -> None:
    """addACL adds to the built-in ACL: loopback still answered, the banner lists both."""
    proc = _start(impl, start_proc, responder, 'addACL("192.0.2.0/24")\n')
    line = proc.wait_for("ACL allowing queries from:")
    assert line == ("ACL allowing queries from: 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, "
                    "169.254.0.0/16, 172.16.0.0/12, 192.0.2.0/24, 192.168.0.0/16, ::1/128, "
                    "fc00::/7, fe80::/10")
    assert query(proc.addr(), "acl.example.") is not None
    assert query(proc.addr(), "acl.example.", tcp=True) is not None


# --- malformed UDP

def _header(qid: int, flags: int, qd: int = 1) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, 0, 0, 0)


def _only_answer_is(sock: socket.socket, qid: int, timeout: float = 2.0) -> list[bytes]:
    """Read datagrams until the one with `qid`; returns everything that came before it."""
    before: list[bytes] = []
    sock.settimeout(timeout)
    while True:
        data = sock.recv(65535)
        if data[:2] == struct.pack("!H", qid):
            return before
        before.append(data)


@pytest.mark.parametrize("impl", BOTH)
def test_malformed_datagrams_dropped(impl: str, start_proc: Starter, responder: Responder) -> None:
    """Short, oversized, QR=1 and unparsable-qname datagrams get nothing; a good query after
    them is answered, and the backend saw none of the bad ones."""
    proc = _start(impl, start_proc, responder)
    good = dns.message.make_query("bad.example.", "A")
    wire = good.to_wire()
    bad = [b"", b"\x12\x34\x01", b"\x00" * 5, b"\x00" * 11,
           _padded(wire, 4369),                                      # above dnsdist's buffer
           _header(0x1111, 0x8100) + wire[12:],                       # QR=1
           _header(0x2222, 0x0100) + b"\x3fabc",                      # label runs off the end
           _header(0x3333, 0x0100) + b"\xc0\x0c\x00\x01\x00\x01"]     # pointer loop to itself
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(proc.addr())
        for d in bad:
            s.send(d)
        good.id = 0x4444
        s.send(good.to_wire())
        assert _only_answer_is(s, 0x4444) == []
    assert responder.count("bad.example.") == 1
    assert proc.alive()


@pytest.mark.parametrize("impl", BOTH)
def test_large_queries_up_to_4368_forwarded(impl: str, start_proc: Starter,
                                            responder: Responder) -> None:
    """dnsdist 1.7.3 reads 4096+272 bytes: a 1600 and a 4368-byte query are forwarded."""
    proc = _start(impl, start_proc, responder)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(proc.addr())
        for qid, size in ((0x5001, 1600), (0x5002, 4368)):
            wire = dns.message.make_query(f"big{size}.example.", "A").to_wire()
            s.send(_padded(struct.pack("!H", qid) + wire[2:], size))
            assert _only_answer_is(s, qid) == []
    assert responder.count("big1600.example.") == responder.count("big4368.example.") == 1


def _padded(wire: bytes, size: int) -> bytes:
    return wire + b"\x00" * (size - len(wire))


@pytest.mark.parametrize("impl", BOTH)
def test_qdcount_zero_gets_notimp(impl: str, start_proc: Starter, responder: Responder) -> None:
    """QDCOUNT=0: a header-only NOTIMP with QR=1 and the query's other flags."""
    proc = _start(impl, start_proc, responder)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(proc.addr())
        s.settimeout(2)
        s.send(_header(0xABCD, 0x0100, qd=0))
        resp = s.recv(65535)
    assert resp == _header(0xABCD, 0x8104, qd=0)


@pytest.mark.parametrize("impl", BOTH)
def test_tcp_garbage_then_normal_query(impl: str, start_proc: Starter, responder: Responder) -> None:
    """A length prefix larger than the data then close, an abandoned half query, an immediate
    close, a tiny TCP query: afterwards UDP and TCP still answer."""
    proc = _start(impl, start_proc, responder)
    wire = dns.message.make_query("tcpbad.example.", "A").to_wire()
    for payload in (struct.pack("!H", 500) + wire, struct.pack("!H", len(wire)) + wire[:7],
                    b"\x00", b""):
        with socket.create_connection(proc.addr(), timeout=2) as s:
            if payload:
                s.sendall(payload)
    with socket.create_connection(proc.addr(), timeout=2) as s:  # < 12 bytes: closed by server
        s.sendall(struct.pack("!H", 5) + b"\x00" * 5)
        try:
            assert s.recv(512) == b""
        except ConnectionResetError:
            pass
    assert query(proc.addr(), "after.example.", tcp=True) is not None
    assert query(proc.addr(), "after.example.") is not None
    assert responder.count("tcpbad.example.") == 0
    assert proc.alive()


def test_forged_backend_responses_ignored(start_proc: Starter, responder_factory: object) -> None:
    """Responses to pydist's backend socket from a wrong source or with a wrong ID are dropped;
    the right one is relayed."""
    answer = default_handler()
    responder: Responder = responder_factory(  # type: ignore[operator]
        handler=lambda q, t: None if "forge" in str(q.q.qname) else answer(q, t))
    proc = start_proc("pydist", CONF, {"backend": responder.address})
    q = dns.message.make_query("forge.example.", "A")
    q.id = 0x5151
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        client.connect(proc.addr())
        client.send(q.to_wire())
        poll_until(lambda: responder.count("forge.example."), timeout=3)
        peer = responder.last_udp_peer
        backend_id = [i for n, _, i in responder.queries if n == "forge.example."][0]
        r = dns.message.make_response(q)
        r.id = backend_id
        stranger.sendto(r.to_wire(), peer)              # right ID, wrong source
        wrong = dns.message.make_response(q)
        wrong.id = (backend_id + 1) % 65536
        responder.udp.sendto(wrong.to_wire(), peer)     # right source, wrong ID
        client.settimeout(0.3)
        with pytest.raises(socket.timeout):
            client.recv(4096)
        responder.udp.sendto(r.to_wire(), peer)         # the real one
        client.settimeout(2)
        got = dns.message.from_wire(client.recv(4096))
    assert got.id == 0x5151 and got.rcode() == dns.rcode.NOERROR
