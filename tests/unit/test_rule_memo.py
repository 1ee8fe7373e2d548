"""The pure-chain memo (pydist/rule_path.py): sized like the default pool's cache, and when full
it forgets its oldest queries instead of everything, so hot names beyond its old fixed size keep
skipping the chain (issue 18 item 3)."""
from __future__ import annotations

from typing import Any

import dnslib
import pytest

from luaapi.runtime import LuaConfig
from pydist import rule_path
from pydist.dns.wire import parse_question
from pydist.engine import Engine
from pydist.frontend.udp import UDPFrontend
from pydist.packet_path import PacketPath
from pydist.registry import FrontendDecl, Registry
from pydist.rings import Rings
from pydist.transport import Transport
from tests.unit.test_udp_miss_path import (BackSock, FakeLoop, FrontSock, answer,
                                           engine_over_fakes, query)

NOW = 1_000_000.0


def make(cache_size: int) -> PacketPath:
    reg = Registry(log=lambda line: None)
    LuaConfig(reg).run_code(f"""
newServer{{address="127.0.0.1:9"}}
pc = newPacketCache({cache_size}, {{maxTTL=86400}})
getPool(""):setCache(pc)
addAction(QTypeRule(DNSQType.HINFO), DropAction())
addAction(QTypeRule(DNSQType.TXT), DropAction())
""", "chunk")
    reg.rings = Rings(100)
    return PacketPath(reg, None)


def through_rules(path: PacketPath, i: int) -> bytes:
    data = bytes(dnslib.DNSRecord.question(f"h{i}.memo.test.", "A").pack())
    qname_end, qtype, qclass = parse_question(data)
    fe = FrontendDecl("127.0.0.1", 53).udp_state
    assert path._before_pool(data, qname_end, qtype, qclass, ("127.0.0.1", 4242), None, fe,
                             Transport.DO53_UDP, True, NOW, None) is not None
    return data


def test_memo_holds_as_many_queries_as_the_cache_holds_answers() -> None:
    assert make(100_000).rule_memo_max == 100_000
    assert make(100).rule_memo_max == rule_path.RULE_MEMO_MIN


def test_a_full_memo_forgets_its_oldest_not_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rule_path, "RULE_MEMO_MIN", 10)
    path = make(160)
    memo = path.rule_memo
    assert memo is not None and path.rule_memo_max == 160
    sent = [through_rules(path, i) for i in range(400)]
    assert 160 - 160 // rule_path.RULE_MEMO_EVICT - 1 <= len(memo) <= 160
    # the newest queries are all remembered, the oldest forgotten
    assert all(data[2:] in memo for data in sent[-140:])
    assert not any(data[2:] in memo for data in sent[:200])
    # no rule matched: the empty verdict, one note shared by every query
    assert {id(v) for v in memo.values()} == {id(memo.note(()))} and memo.note(()) == (memo, ())


# ---- the verdict kept on the exact-bytes level's record (issue 18 item 3: no cliff)

HIT_CONF = """
setLocal("127.0.0.1:53")
newServer{{address="127.0.0.1:53"}}
pc = newPacketCache({cache_size}, {{maxTTL=86400}})
getPool(""):setCache(pc)
addAction(QTypeRule(DNSQType.HINFO), DropAction(), {{name="hinfo"}})
addAction(AllRule(), NoneAction(), {{name="all"}})
"""


class Served:
    """A pydist engine over fake sockets (tests/unit/test_udp_miss_path.py's), with the
    queries that took the full path counted."""

    def __init__(self, cache_size: int) -> None:
        self.reg = Registry(log=lambda line: None)
        LuaConfig(self.reg).run_code(HIT_CONF.format(cache_size=cache_size), "chunk")
        self.engine = Engine(self.reg, FakeLoop())  # type: ignore[arg-type]
        server = self.server = self.reg.servers[0]
        self.engine.server_added(server)
        for s in server.udp.socks:
            s.close()
        self.back = BackSock()
        server.udp.socks = [self.back]
        server.up_status = True
        self.path = self.engine.path
        self.path.refresh()
        self.fe = self.reg.frontends[0].udp_state
        self.front = FrontSock()
        self.full = 0
        step = self.path.query_step

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.full += 1
            return step(*args, **kwargs)
        self.path.query_step = counted  # type: ignore[method-assign]

    def send(self, queries: list[bytes]) -> list[bytes]:
        """Drains of the listener (100 datagrams each), the backend answering what was
        forwarded; the answers."""
        out = []
        for k in range(0, len(queries), 100):
            self.front.queue = [(q, ("127.0.0.1", 40000)) for q in queries[k:k + 100]]
            self.front.answers = []
            UDPFrontend(self.path, self.fe, self.front).readable()
            self.back.answers = [answer(q) for q in self.back.sent]
            self.back.sent = []
            self.server.udp._drain(self.back)
            out += [a for a, _ in self.front.answers]
        return out

    def rule(self, name: str) -> int:
        return next(r.matches for r in self.reg.rules["query"].rules if r.name == name)


def test_hot_names_beyond_the_memo_bound_keep_skipping_the_chain(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rule_path, "RULE_MEMO_MIN", 10)
    s = Served(cache_size=1000)
    assert s.path.rule_memo_max == 1000
    names = range(300)
    assert len(s.send([query(i, 1) for i in names])) == 300           # misses
    assert s.full == 300 and len(s.path.rule_memo) == 0               # every note on its entry
    for ident in (2, 3):
        answers = s.send([query(i, ident) for i in names])
        assert [a[:2] for a in answers] == [bytes((0, ident))] * 300
    assert s.full == 300                     # every hit from the exact level, the first too
    assert s.rule("all") == 900 and s.rule("hinfo") == 0
    assert s.reg.stats.cache_hits == 600 and s.reg.stats.queries == 900


def test_a_new_chain_retires_the_notes_kept_on_entries() -> None:
    s = Served(cache_size=1000)
    s.send([query(i, 1) for i in range(5)])
    s.send([query(i, 2) for i in range(5)])
    assert s.full == 5 and s.rule("all") == 10
    old = s.path.rule_memo
    LuaConfig(s.reg).run_code('addAction(QTypeRule(DNSQType.TXT), DropAction(), {name="txt"})',
                              "console")
    assert s.path.rule_memo is not old and not old
    assert len(s.send([query(i, 3) for i in range(5)])) == 5
    assert s.full == 10                      # the new chain ran once for each name
    assert len(s.send([query(i, 4) for i in range(5)])) == 5
    assert s.full == 10 and s.rule("all") == 20 and s.rule("txt") == 0


def test_a_query_with_capitals_keeps_its_own_verdict() -> None:
    """Its entry is keyed on the lowercase name: the verdict for its own bytes is not the
    entry's (a rule may see case); it waits for the record of its own bytes."""
    s = Served(cache_size=1000)
    upper = query(1, 1).replace(b"bench", b"BENCH")
    s.send([upper])
    assert upper[2:] in s.path.rule_memo
    s.send([query(1, 2).replace(b"bench", b"BENCH")])     # the full path makes its record
    s.send([query(1, 3).replace(b"bench", b"BENCH")])     # which takes the verdict
    assert s.full == 2 and upper[2:] not in s.path.rule_memo
    assert s.send([query(1, 4)])[0][:2] == b"\x00\x04"     # lowercase: a verdict of its own
    assert s.full == 3 and s.rule("all") == 4


LUA_CONF = """
setLocal("127.0.0.1:53")
newServer{address="127.0.0.1:9"}
pc = newPacketCache(1000, {maxTTL=86400})
getPool(""):setCache(pc)
function noop(dq) return DNSAction.None, "" end
"""


def test_lua_on_every_query_turns_the_memo_and_the_fast_hit_off() -> None:
    """AllRule() with a LuaAction: no pass-through can ever be remembered, so cache hits go
    straight to the full path (which runs the Lua, then the exact level) instead of looking
    for a verdict first."""
    path = engine_over_fakes(LUA_CONF + 'addAction(AllRule(), LuaAction(noop))')[1].path
    assert path.rule_memo is None and path.fast_cache is None
    assert path.cache_after_rules is not None
    path = engine_over_fakes(LUA_CONF + 'addAction(QTypeRule(DNSQType.TXT), LuaAction(noop))')[1].path
    assert path.rule_memo is not None and path.fast_cache is not None


def test_a_record_without_a_verdict_skips_the_exact_lookup() -> None:
    """A hit whose record holds no verdict of the chain, with none waiting (its query matched
    a LuaAction: never remembered), goes to the full path without asking lookup_exact."""
    reg, engine, server, back = engine_over_fakes(
        LUA_CONF + 'addAction(QTypeRule(DNSQType.A), LuaAction(noop))')
    assert engine.path.rule_memo is not None
    fe = UDPFrontend(engine.path, reg.frontends[0].udp_state, FrontSock())
    fe.sock.queue = [(query(1, 1), ("127.0.0.1", 4000))]
    fe.readable()
    back.answers = [answer(q) for q in back.sent]
    server.udp._drain(back)
    cache = engine.path.fast_cache
    asked = []
    real = cache.lookup_exact
    # (the full path asks it too, after the rules, without the memo: that call is expected)
    cache.lookup_exact = lambda *a: asked.append(len(a)) or real(*a)   # type: ignore[method-assign]
    for ident in (2, 3):
        fe.sock.queue = [(query(1, ident), ("127.0.0.1", 4000))]
        fe.readable()
    assert reg.stats.cache_hits == 2 and asked == [3, 3]
