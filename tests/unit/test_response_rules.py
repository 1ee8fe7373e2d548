"""Response chains without sockets: the DNSResponseAction verdicts in order (facts §10.1), the
actions' texts, the TTL walk of editTTLs, and Lua response actions through the bindings."""
from __future__ import annotations

import dnslib
import pytest

from luaapi.runtime import ConfigError, LuaConfig
from pydist.registry import Registry
from pydist.rules import actions as A
from pydist.rules import response_actions as RA
from pydist.rules import selectors as S
from pydist.rules.chain import Rule
from pydist.rules.responses import apply_response_rules, run_response_chain


def answer(name: str = "www.example.com.", rcode: int = 0) -> tuple[bytes, int]:
    q = dnslib.DNSRecord.question(name, "A")
    r = q.reply()
    r.header.rcode = rcode
    r.add_answer(dnslib.RR(name, dnslib.QTYPE.A, ttl=300, rdata=dnslib.A("192.0.2.1")))
    r.add_auth(dnslib.RR("example.com.", dnslib.QTYPE.NS, ttl=600, rdata=dnslib.NS("ns.example.com.")))
    data = r.pack()
    return data, 12 + len(name) + 1


def run(actions: list, resp: bytes | None = None) -> tuple[bytes | None, int, list[int]]:
    rules = tuple(Rule(S.AllRule(), a) for a in actions)
    data, end = answer() if resp is None else (resp, 12 + len("www.example.com.") + 1)
    out, delay, _ = apply_response_rules(rules, data, end, 1, 1, ("192.0.2.9", 5300), None,
                                         False, 0.0)
    return out, delay, [r.matches for r in rules]


def test_verdicts_stop_or_continue() -> None:
    out, _, m = run([RA.DropResponseAction(), RA.AllowResponseAction()])
    assert out is None and m == [1, 0]
    out, _, m = run([RA.AllowResponseAction(), RA.DropResponseAction()])
    assert out is not None and m == [1, 0]
    out, delay, m = run([RA.DelayResponseAction(50), RA.SetTagResponseAction("k", "v"),
                         RA.DelayResponseAction(70)])
    assert out is not None and delay == 70 and m == [1, 1, 1]


def test_servfail_sets_rcode_and_stops() -> None:
    sf = RA.LuaResponseAction(lambda dr: (A.R_SERVFAIL, None))
    out, _, m = run([sf, RA.DropResponseAction()])
    assert out is not None and out[3] & 0x0F == 2 and m == [1, 0]


def test_delay_is_udp_only() -> None:
    rules = (Rule(S.AllRule(), RA.DelayResponseAction(50)),)
    data, end = answer()
    assert apply_response_rules(rules, data, end, 1, 1, ("::1", 1), None, True, 0.0)[1] == 0


def test_selectors_see_the_answer_and_query_tags() -> None:
    data, end = answer(rcode=3)
    rules = (Rule(S.RCodeRule(0), RA.DropResponseAction()),
             Rule(S.TagRule("k", "v"), RA.LuaResponseAction(lambda dr: (A.R_HEADER_MODIFY, None))),
             Rule(S.AllRule(), RA.DropResponseAction()))
    out, _, _ = apply_response_rules(rules, data, end, 1, 1, ("192.0.2.9", 1), None, False, 0.0,
                                     {"k": "v"})
    assert out is not None and [r.matches for r in rules] == [0, 1, 0]
    assert run_response_chain(rules[2:], _dr(data, end)) is False


def _dr(data: bytes, end: int) -> object:
    from pydist.rules.responses import DNSResponse
    return DNSResponse(data, end, 1, 1, ("192.0.2.9", 1))


def test_ttl_walk_skips_question_and_opt() -> None:
    data, _ = answer()
    fields = RA.rr_ttl_fields(data)
    assert [(s, c, t) for s, c, t, _ in fields] == [(1, 1, 1), (2, 1, 2)]
    assert [int.from_bytes(data[o:o + 4], "big") for *_, o in fields] == [300, 600]
    assert RA.rr_ttl_fields(data[:20]) == []


@pytest.mark.parametrize("act,text", [
    (RA.AllowResponseAction(), "allow"), (RA.DropResponseAction(), "drop"),
    (RA.DelayResponseAction(10), "delay by 10 msec"),
    (RA.SetTagResponseAction("a", "b"), "set tag 'a' to value 'b'"),
    (RA.SetSkipCacheResponseAction(), "skip cache"), (RA.LogResponseAction(), "log"),
    (RA.LuaResponseAction(lambda dr: (A.R_NONE, None)), "Lua response script"),
])
def test_response_action_texts(act: A.Action, text: str) -> None:
    assert str(act) == text and act.response


def lua(code: str) -> Registry:
    reg = Registry(log=lambda line: None)
    LuaConfig(reg).run_code(code, "chunk")
    return reg


def test_lua_response_action_edits_ttls_and_rcode() -> None:
    reg = lua("""addResponseAction(AllRule(), LuaResponseAction(function(dr)
        dr:editTTLs(function(s, c, t, ttl) if s == 1 then return ttl - 100 end return ttl end)
        dr.rcode = DNSRCode.REFUSED
        return DNSResponseAction.None, ""
      end))""")
    data, end = answer()
    out, _, _ = apply_response_rules(reg.rules["response"].rules, data, end, 1, 1,
                                     ("192.0.2.9", 1), None, False, 0.0)
    rec = dnslib.DNSRecord.parse(out)
    assert rec.header.rcode == 5 and rec.rr[0].ttl == 200 and rec.auth[0].ttl == 600


def test_lua_response_error_is_servfail_and_logged() -> None:
    logged: list[str] = []
    reg = Registry(log=logged.append)
    LuaConfig(reg).run_code('addResponseAction(AllRule(), LuaResponseAction(function(dr) '
                            'error("boom") end))', "chunk")
    data, end = answer()
    out, _, _ = apply_response_rules(reg.rules["response"].rules, data, end, 1, 1,
                                     ("192.0.2.9", 1), None, False, 0.0)
    assert out[3] & 0x0F == 2
    assert logged[0].splitlines()[0] == ('LuaResponseAction failed inside Lua, returning '
                                         'ServFail: [string "chunk"]:1: boom')


def test_query_and_response_actions_do_not_mix() -> None:
    with pytest.raises(ConfigError) as e:
        lua('addResponseAction(AllRule(), DropAction())')
    assert ("addResponseAction() can only be called with response-related actions, not "
            "query-related ones. Are you looking for addAction()?") in e.value.lines[0]
    with pytest.raises(ConfigError) as e:
        lua('addAction(AllRule(), DropResponseAction())')
    assert "Are you looking for addResponseAction()?" in e.value.lines[0]


def test_set_mac_addr_action_reads_the_neighbour_table(tmp_path: object) -> None:
    from pathlib import Path

    from pydist.rules.more_actions import SetMacAddrAction
    from tests.unit.test_rules import make_dq
    arp = Path(str(tmp_path)) / "arp"
    arp.write_text("IP address       HW type     Flags       HW address            Mask     Device\n"
                   "192.0.2.10       0x1         0x2         52:54:00:12:34:56     *        eth0\n"
                   "192.0.2.11       0x1         0x0         00:00:00:00:00:00     *        eth0\n")
    act = SetMacAddrAction(65001)
    act.ARP_TABLE = str(arp)
    dq = make_dq(remote="192.0.2.10")
    act(dq)
    assert dq.edns_options() == [(65001, bytes.fromhex("525400123456"))]
    other = make_dq(remote="192.0.2.11")                 # incomplete entry: nothing added
    act(other)
    assert other.edns_options() == [] and str(act) == "add EDNS MAC (code=65001)"
