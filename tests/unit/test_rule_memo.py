"""The pure-chain memo (pydist/rule_path.py): sized like the default pool's cache, and when full
it forgets its oldest queries instead of everything, so hot names beyond its old fixed size keep
skipping the chain (issue 18 item 3)."""
from __future__ import annotations

import dnslib
import pytest

from luaapi.runtime import LuaConfig
from pydist import rule_path
from pydist.dns.wire import parse_question
from pydist.packet_path import PacketPath
from pydist.registry import FrontendDecl, Registry
from pydist.rings import Rings
from pydist.transport import Transport

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
    assert all(v == () for v in memo.values())      # no rule matched: the empty verdict
