"""Cache hits behind a LuaAction: the action runs for every query, and a query it left as it
came is answered from the exact-bytes cache level with the full path's counters; one it
changed (a tag, a pool) still takes the full path."""
from __future__ import annotations

from typing import Any

import dnslib

from luaapi.runtime import LuaConfig
from pydist.dns.wire import parse_question
from pydist.frontend.udp import UDPFrontend
from pydist.packet_path import PacketPath
from pydist.registry import FrontendDecl, Registry
from pydist.rings import Rings

CONF = """
newServer{address="127.0.0.1:9"}
pc = newPacketCache(100, {maxTTL=86400})
getPool(""):setCache(pc)
calls = 0
addAction(AllRule(), LuaAction(function(dq)
  calls = calls + 1
  if dq.qname:toString() == "tagged.test." then dq:setTag("k", "v") end
  return DNSAction.None, ""
end))
"""
NOW = 1_000_000.0


class FakeSock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: Any, addr: Any) -> None:
        self.sent.append(bytes(data))


def cached_query(reg: Registry, name: str, udp: bool = True,
                 now: float = NOW) -> tuple[bytes, bytes]:
    """A query and the answer put in the default pool's cache for it (its UDP or TCP entry)."""
    q = dnslib.DNSRecord.question(name, "A")
    data = bytes(q.pack())
    a = q.reply()
    a.add_answer(*dnslib.RR.fromZone(f"{name} 3600 A 192.0.2.1"))
    cache = reg.get_pool("").cache
    qname_end = parse_question(data)[0]
    _, key = cache.lookup(data, qname_end, udp, now, 0, exact=True)
    cache.insert(key, data, qname_end, udp, bytes(a.pack()), now, None)
    return data, bytes(a.pack())


def count_full_lookups(reg: Registry) -> list[int]:
    """The calls of the cache's full lookup (the exact level is another method)."""
    cache = reg.get_pool("").cache
    calls = [0]
    full = cache.lookup

    def lookup(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return full(*args, **kwargs)
    cache.lookup = lookup
    return calls


def make() -> tuple[PacketPath, Registry, LuaConfig]:
    reg = Registry(log=lambda line: None)
    lua = LuaConfig(reg)
    lua.run_code(CONF, "chunk")
    reg.rings = Rings(100)
    return PacketPath(reg, None), reg, lua


def test_hits_behind_a_lua_action_run_it_and_count_as_hits() -> None:
    path, reg, lua = make()
    assert path.cache_after_rules is not None
    data, answer = cached_query(reg, "plain.test.")
    full = count_full_lookups(reg)
    sock = FakeSock()
    fe = FrontendDecl("127.0.0.1", 53).udp_state
    for i in range(3):
        UDPFrontend(path, fe, sock).full_path(data, ("127.0.0.1", 4242), sock, NOW)
    assert lua.globals.calls == 3
    assert len(sock.sent) == 3 and all(s[4:] == answer[4:] for s in sock.sent)
    assert reg.stats.cache_hits == 3 and reg.stats.cache_misses == 0
    assert reg.stats.frontend_noerror == 3 and reg.stats.latency0_1 == 3
    assert full == [0]        # every hit, the first too, is served by the exact level


def test_a_query_the_action_changed_takes_the_full_path() -> None:
    path, reg, lua = make()
    data, answer = cached_query(reg, "tagged.test.")
    sock = FakeSock()
    fe = FrontendDecl("127.0.0.1", 53).udp_state
    full = count_full_lookups(reg)
    for i in range(2):
        UDPFrontend(path, fe, sock).full_path(data, ("127.0.0.1", 4242), sock, NOW)
    assert lua.globals.calls == 2 and reg.stats.cache_hits == 2
    assert len(sock.sent) == 2 and all(s[4:] == answer[4:] for s in sock.sent)
    assert full == [2]
