"""addXPF: the record dnsdist 1.7.3 appends to queries for a backend (client and listener
addresses, ports, transport), byte for byte on both implementations, and never part of the
cache key."""
from __future__ import annotations

import socket
import struct

import dns.message
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.pydist_proc import poll_until, send_message

CODE = 65422
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}", addXPF=%d})
newServer({address="{plain}", pool="plain"})
getPool(""):setCache(newPacketCache(100))
addAction("plain.test.", PoolAction("plain"))
""" % CODE


def expected(proto: int, client_port: int, listen_port: int) -> bytes:
    rdata = bytes((4, proto)) + socket.inet_aton("127.0.0.1") * 2 + \
        struct.pack("!HH", client_port, listen_port)
    return b"\x00" + struct.pack("!HHIH", CODE, 1, 0, len(rdata)) + rdata


def _udp_from_known_port(where: tuple[str, int], name: str) -> int:
    """One UDP query from a socket whose port we know; that port."""
    q = dns.message.make_query(name, "A", use_edns=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        s.sendto(q.to_wire(), where)
        assert dns.message.from_wire(s.recvfrom(4096)[0]).id == q.id
        return s.getsockname()[1]


@pytest.mark.parametrize("impl", BOTH)
def test_xpf_record_as_dnsdist(impl: str, start_proc: Starter,
                               responder_factory: ResponderFactory) -> None:
    backend, plain = responder_factory(), responder_factory()
    proc = start_proc(impl, CONF, {"backend": backend.address, "plain": plain.address})
    where = proc.addr()
    listen = where[1]
    client = _udp_from_known_port(where, "udp.xpf.test.")
    transport, _, raw = backend.raw[-1]
    assert transport == "udp" and raw[10:12] == b"\x00\x01"        # ARCOUNT raised
    assert raw.endswith(expected(17, client, listen))
    # the same question again, from another port: a cache hit, so XPF is not in the key
    _udp_from_known_port(where, "udp.xpf.test.")
    assert [q[0] for q in backend.queries].count("udp.xpf.test.") == 1
    # over TCP: protocol 6, the client's TCP port
    with socket.create_connection(where, timeout=2) as s:
        wire = dns.message.make_query("tcp.xpf.test.", "A", use_edns=False).to_wire()
        s.sendall(struct.pack("!H", len(wire)) + wire)
        assert len(s.recv(2)) == 2
        client_tcp = s.getsockname()[1]
    raw = poll_until(lambda: next((r for t, _, r in backend.raw if b"\x03tcp\x03xpf" in r), None))
    assert raw.endswith(expected(6, client_tcp, listen))
    # a query with EDNS keeps its OPT and gets the record after it; other servers get none
    r = send_message(where, dns.message.make_query("edns.xpf.test.", "A", use_edns=0))
    assert r is not None
    raw = next(r for _, _, r in backend.raw if b"\x04edns" in r)
    assert raw[10:12] == b"\x00\x02" and b"\x00\x00\x29" in raw[:-25]
    assert send_message(where, dns.message.make_query("plain.test.", "A")) is not None
    assert struct.pack("!H", CODE) not in plain.raw[-1][2][12:]
