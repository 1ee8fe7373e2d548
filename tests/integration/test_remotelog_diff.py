"""Protobuf remote logging (newRemoteLogger, RemoteLogAction, RemoteLogResponseAction), pydist
against real dnsdist 1.7.3 sending to a local collector: the same PBDNSMessage fields in the
same order for queries, answers (CNAME included or not) and cache hits, a query and its answer
sharing one message id; and the reconnect log line when the collector is away."""
from __future__ import annotations

import socket
import struct

import dnslib
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter, available_impls
from tests.helpers.pbdecode import decode
from tests.helpers.pydist_proc import poll_until, query
from tests.helpers.receivers import serve_connections

NESTED = {12: {}, 13: {2: {}}}
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer{address="{backend}"}
getPool(""):setCache(newPacketCache(100))
rl = newRemoteLogger("127.0.0.1:COLLECTOR")
addAction(AllRule(), RemoteLogAction(rl, nil, {serverID="srv"}))
addResponseAction(AllRule(), RemoteLogResponseAction(rl, nil, true, {serverID="srv"}))
addCacheHitResponseAction(AllRule(), RemoteLogResponseAction(rl, nil, false))
"""


class Collector:
    """Length-prefixed protobuf messages from any number of connections, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.port = serve_connections(self._read)

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while chunk := conn.recv(65536):
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                self.messages.append(buf[2:2 + n])
                buf = buf[2 + n:]


def cname_chain(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    r = q.reply()
    r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.CNAME, ttl=60,
                           rdata=dnslib.CNAME("target.example.net.")))
    r.add_answer(dnslib.RR("target.example.net.", dnslib.QTYPE.A, ttl=30,
                           rdata=dnslib.A("192.0.2.1")))
    r.add_answer(dnslib.RR("target.example.net.", dnslib.QTYPE.TXT, ttl=30,
                           rdata=dnslib.TXT("not logged")))
    return r


def _normalized(raw: bytes, listen: int) -> list[tuple[int, object]]:
    """A message without what differs run to run: times, the id, the client's port."""
    out = []
    for number, value in decode(raw, NESTED):
        if number in (9, 10, 2, 11):
            continue
        if number == 20:
            value = "client-port"
        if number == 21:
            assert value == listen
            value = "listener-port"
        if number == 13:
            value = [(n, v) for n, v in value if n not in (5, 6)]
        out.append((number, value))
    return out


def _run(impl: str, start_proc: Starter, responder_factory: ResponderFactory) -> list[bytes]:
    collector = Collector()
    backend = responder_factory(cname_chain)
    proc = start_proc(impl, CONF.replace("COLLECTOR", str(collector.port)),
                      {"backend": backend.address})
    for tcp in (False, False, True):        # a miss, a cache hit, a TCP cache miss
        assert query(proc.addr(), "www.example.com.", tcp=tcp) is not None
    poll_until(lambda: len(collector.messages) >= 6, timeout=8.0)
    return collector.messages, proc.addr()[1]


@pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")
def test_messages_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory) -> None:
    seen = {}
    for impl in ("pydist", "dnsdist"):
        messages, listen = _run(impl, start_proc, responder_factory)
        ids = [dict(decode(m))[2] for m in messages]
        assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5], impl
        assert len(set(ids)) == 3, impl
        seen[impl] = [_normalized(m, listen) for m in messages]
    assert seen["pydist"] == seen["dnsdist"]
    kinds = [dict(m)[1] for m in seen["pydist"]]
    assert kinds == [1, 2, 1, 2, 1, 2]
    answer = dict(seen["pydist"][1])[13]
    assert [dict(rr)[2] for n, rr in answer if n == 2] == [5, 1]     # CNAME, A; no TXT


@pytest.mark.parametrize("impl", BOTH)
def test_unreachable_collector_is_retried_and_logged(impl: str, start_proc: Starter,
                                                     responder) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    conf = CONF.replace("COLLECTOR", str(port))
    proc = start_proc(impl, conf, {"backend": responder.address})
    line = (f"Error connecting to remote logger 127.0.0.1:{port}: connecting to "
            f"127.0.0.1:{port} failed: Connection refused")
    assert proc.wait_for(line, count=2)          # once per reconnect attempt (every second)
    assert query(proc.addr(), "served.example.") is not None
