"""Cache hits over plain TCP: pipelined hits take the exact-bytes cache level (no full lookup),
are counted as the full path counts a TCP hit, and the answers one read gave go out in one
write, in order, each with its own query's ID."""
from __future__ import annotations

import ipaddress
import time
from typing import Any

import dnslib

from luaapi.runtime import LuaConfig
from pydist.dns.wire import parse_question
from pydist.dynblocks import NONE
from pydist.frontend.tcp import TCPClientConnection
from pydist.packet_path import PacketPath
from pydist.registry import FrontendDecl, Registry
from pydist.rings import Rings
from tests.unit.test_lua_hit_path import cached_query, count_full_lookups

CONF = """
newServer{address="127.0.0.1:9"}:setUp()
pc = newPacketCache(100, {maxTTL=86400})
getPool(""):setCache(pc)
"""
NOW = time.time()   # the frontend reads the clock itself


class FakeLoop:
    def call_later(self, delay: float, fn: Any) -> Any:
        return self

    def cancel(self) -> None:
        pass


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def make(conf: str = CONF) -> tuple[PacketPath, Registry]:
    reg = Registry(log=lambda line: None)
    LuaConfig(reg).run_code(conf, "chunk")
    reg.rings = Rings(100)
    path = PacketPath(reg, FakeLoop())
    return path, reg


def query(name: str, qid: int) -> bytes:
    q = dnslib.DNSRecord.question(name, "A")
    q.header.id = qid
    return bytes(q.pack())


def cache_answer(reg: Registry, name: str) -> None:
    """The backend's answer for `name` stored as a TCP query's, then hit once by the full
    path (which makes it the exact level's ready answer)."""
    data, _ = cached_query(reg, name, udp=False, now=NOW)
    qname_end = parse_question(data)[0]
    assert reg.get_pool("").cache.lookup(data, qname_end, False, NOW, 0, exact=True)[0]


def connect(path: PacketPath) -> tuple[TCPClientConnection, FakeTransport]:
    fe = FrontendDecl("127.0.0.1", 53).tcp_state
    conn = TCPClientConnection(path, fe, {})
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport


def frames(*queries: bytes) -> bytes:
    return b"".join(len(q).to_bytes(2, "big") + q for q in queries)


def answers(written: bytes) -> list[dnslib.DNSRecord]:
    out = []
    while written:
        n = int.from_bytes(written[:2], "big")
        out.append(dnslib.DNSRecord.parse(written[2:2 + n]))
        written = written[2 + n:]
    return out


def test_pipelined_hits_take_the_exact_level_and_go_out_in_one_write() -> None:
    path, reg = make()
    assert path.fast_cache is not None
    cache_answer(reg, "a.test.")
    cache_answer(reg, "b.test.")
    full = count_full_lookups(reg)
    stats = reg.stats
    before = (stats.queries, stats.cache_hits, stats.rdqueries, stats.frontend_noerror,
              stats.latency_count)
    conn, transport = connect(path)
    conn.data_received(frames(query("a.test.", 11), query("b.test.", 12),
                              query("a.test.", 13)))
    assert full[0] == 0
    assert len(transport.writes) == 1 and not transport.closed
    got = answers(transport.writes[0])
    assert [(r.header.id, str(r.q.qname), str(r.rr[0].rdata)) for r in got] == [
        (11, "a.test.", "192.0.2.1"), (12, "b.test.", "192.0.2.1"), (13, "a.test.", "192.0.2.1")]
    after = (stats.queries, stats.cache_hits, stats.rdqueries, stats.frontend_noerror,
             stats.latency_count)
    assert [y - x for x, y in zip(before, after)] == [3, 3, 3, 3, 3]
    assert len(reg.rings.queries) == 3 and conn.in_flight == 0


def test_a_miss_among_hits_takes_the_full_path_and_the_hits_before_it_are_written() -> None:
    path, reg = make()
    cache_answer(reg, "a.test.")
    full = count_full_lookups(reg)
    forwarded = []
    path.backends.forward = lambda v, sink: forwarded.append(v) or True
    conn, transport = connect(path)
    conn.data_received(frames(query("a.test.", 21), query("miss.test.", 22),
                              query("a.test.", 23)))
    assert full[0] == 1 and len(forwarded) == 1
    assert [r.header.id for r in answers(b"".join(transport.writes))] == [21]
    conn.answer(None, bytes(dnslib.DNSRecord.parse(query("miss.test.", 22)).reply().pack()), 0)
    assert [r.header.id for r in answers(b"".join(transport.writes))] == [21, 22, 23]


def test_a_dynamic_block_sends_hits_down_the_full_path() -> None:
    path, reg = make()
    cache_answer(reg, "a.test.")
    reg.dynblocks.insert_network(ipaddress.ip_network("127.0.0.1/32"), "test", 60, NONE,
                                 time.time(), quiet=True)
    path.refresh()
    assert path.dynblocks is not None
    full = count_full_lookups(reg)
    conn, transport = connect(path)
    conn.data_received(frames(query("a.test.", 31)))
    assert full[0] == 0          # blocked before the cache (dropped: the connection closed)
    assert transport.closed and not transport.writes
    assert reg.stats.dyn_blocked == 1
