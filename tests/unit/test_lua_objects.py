"""The Lua face of rules and value objects, run in a check-config Lua state: dnsdist's texts
and errors (makeRule quirk, NetmaskGroupRule conversion, response action in addAction...)."""
from __future__ import annotations

import pytest

from luaapi.runtime import ConfigError, LuaConfig
from pydist.registry import CHECK, Registry


def run(code: str) -> tuple[LuaConfig, list[str]]:
    logs: list[str] = []
    cfg = LuaConfig(Registry(CHECK, log=logs.append))
    cfg.run_code(code, "chunk")
    return cfg, logs


def test_objects_and_rule_texts() -> None:
    cfg, _ = run("""
      local s = newSuffixMatchNode(); s:add("b.example."); s:add({"a.com", newDNSName("Z.org")})
      local n = newNMG(); n:addMask("10.0.0.0/8"); n:addMask("[::1]/128")
      r1 = SuffixMatchNodeRule(s):toString()
      r2 = NetmaskGroupRule(n, false):toString()
      r3 = makeRule({"192.0.2.0/24", "example.com"}):toString()
      r4 = makeRule("Example.COM"):toString()
      c1 = s:check(newDNSName("www.A.com")); c2 = s:check(newDNSName("com"))
      d = newDNSName("www.Example.com")
      d1 = d:isPartOf(newDNSName("example.COM")); d2 = d:countLabels(); d3 = d:toString()
      ca = newCA("192.0.2.1:5300"); ca1 = ca:toStringWithPort(); ca2 = ca:getPort()
      m = n:match(newCA("10.1.2.3"))
    """)
    g = cfg.globals
    assert g.r1 == "qname in b.example., Z.org., a.com."
    assert g.r2 == "Dst: 10.0.0.0/8, ::1/128"
    assert g.r3 == "Src: 192.0.2.0/24"
    assert g.r4 == "qname in Example.COM."
    assert g.c1 is True and g.c2 is False
    assert (g.d1, g.d2, g.d3) == (True, 3, "www.Example.com.")
    assert (g.ca1, g.ca2, g.m) == ("192.0.2.1:5300", 5300, True)


def test_add_action_fills_the_chain_and_show_rules() -> None:
    cfg, _ = run("""
      addAction({"glue.", "glue"}, PoolAction("opennic"))
      addAction("192.168.1.0/24", DropAction(), {name="lan"})
      addResponseAction(AllRule(), DelayResponseAction(10))
      setRules({newRuleAction(QTypeRule("ANY"), TCAction()), newRuleAction(AllRule(), AllowAction())})
    """)
    q = cfg.registry.rules["query"].rules
    assert [str(r.action) for r in q] == ["tc=1 answer", "allow"]
    assert str(cfg.registry.rules["response"].rules[0].action) == "delay by 10 msec"
    cfg.output.clear()
    cfg.run_code("showRules()", "console")
    assert cfg.output[1].startswith("0                                          0 qtype==ANY")


@pytest.mark.parametrize("code,message", [
    ('NetmaskGroupRule({"127.0.0.1/8"})', "Unable to convert parameter from table to 12NetmaskGroup"),
    ("addAction(AllRule(), DropResponseAction())",
     "Caught exception: addAction() can only be called with query-related actions, not "
     "response-related ones. Are you looking for addResponseAction()?"),
    ("newBPFFilter({ipv4MaxItems=1024})", "This function requires at least 3 parameter(s)"),
    ("addPoolRule('a', 'b')", "attempt to call global 'addPoolRule' (a nil value)"),
    ("topRule()", "attempt to call global 'topRule' (a nil value)"),
])
def test_errors_read_like_dnsdist(code: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        run(code)
    assert e.value.lines[0].startswith(f'Fatal Lua error: [string "chunk"]:1: {message}')


def test_unsupported_directives_record_their_line() -> None:
    cfg, logs = run('setLocal("127.0.0.1:5300")\n\nsnmpAgent(true)\n'
                    'f = newDynBPFFilter()\n')
    assert cfg.registry.unsupported == ["snmpAgent() at line 3", "newDynBPFFilter() at line 4"]
    assert logs == []
