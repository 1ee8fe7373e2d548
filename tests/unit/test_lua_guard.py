"""The 0.2 s guard around user Lua: a looping call is stopped, a short one is not, and a
LuaRule that raised leaves the guard disarmed for the Lua that runs next (a console line)."""
from __future__ import annotations

import time

import dnslib

from luaapi.runtime import LuaConfig
from pydist.dns.wire import parse_question
from pydist.dnsquestion import DNSQuestion
from pydist.registry import Registry

CONF = """
addAction(LuaRule(function(dq) error("boom") end), DropAction())
addAction(LuaRule(function(dq) while true do end end), DropAction())
"""


def question() -> DNSQuestion:
    data = bytes(dnslib.DNSRecord.question("guard.test.", "A").pack())
    qname_end, qtype, qclass = parse_question(data)
    return DNSQuestion(data, qname_end, qtype, qclass, ("127.0.0.1", 5300))


def test_guard_stops_loops_and_disarms_after_an_error() -> None:
    logged: list[str] = []
    reg = Registry(log=logged.append)
    lua = LuaConfig(reg)
    lua.run_code(CONF, "chunk")
    failing, looping = (r.selector for r in reg.rules["query"].rules)
    assert failing.matches(question()) is False
    assert logged and logged[-1].startswith("LuaRule failed inside Lua: ") and "boom" in logged[-1]
    # Lua running after the error, longer than the limit, is no guarded call: not stopped
    lua.run_code("local t = os.clock() while os.clock() - t < 0.3 do end", "chunk")
    start = time.process_time()
    assert looping.matches(question()) is False
    assert "ran for more than 0.2 s" in logged[-1]
    assert 0.15 < time.process_time() - start < 2.0


ACTIONS = """
addAction(AllRule(), LuaAction(function(dq) return DNSAction.None, "" end))
addAction(AllRule(), LuaAction(function(dq) return DNSAction.Pool, "" end))
addAction(AllRule(), LuaAction(function(dq) return DNSAction.Pool, "abuse" end))
addAction(AllRule(), LuaAction(function(dq) return 3.0, "" end))
addAction(AllRule(), LuaAction(function(dq) return 1.5, "" end))
addAction(AllRule(), LuaAction(function(dq) return DNSAction.Drop end))
addAction(AllRule(), LuaAction(function(dq) return DNSAction.None, "", "more" end))
addAction(AllRule(), LuaAction(function(dq) return "nope", "" end))
addAction(AllRule(), LuaAction(function(dq) error("bang") end))
"""


def test_lua_action_outcomes_read_the_same_through_the_bound_call() -> None:
    """The usual `return verdict, ""` comes back from Lua as one number (luacall's bound
    call): every other shape still reads as before."""
    logged: list[str] = []
    reg = Registry(log=logged.append)
    LuaConfig(reg).run_code(ACTIONS, "chunk")
    got = [r.run(question()) for r in reg.rules["query"].rules]
    # DNSAction: Drop 0, Pool 6, ServFail 9, None 10 (what the code before the bound call gave)
    assert got == [(10, ""), (6, ""), (6, "abuse"), (3, ""), (1, ""), (0, None), (10, ""),
                   (10, None), (9, None)], got
    assert "bang" in logged[-1]
