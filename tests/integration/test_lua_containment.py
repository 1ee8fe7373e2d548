"""User Lua in rules is contained (pydist only: dnsdist 1.7.3 would hang a thread on the loop):
a LuaAction that errors or loops answers SERVFAIL with a warning, a LuaRule that loops does not
match, and other clients keep being answered meanwhile."""
from __future__ import annotations

import socket

import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import query

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
addAction("loop.test.", LuaAction(function(dq) while true do end end))
addAction("err.test.", LuaAction(function(dq) error("boom") end))
addAction(AndRule({QNameRule("rloop.test."), LuaRule(function(dq) while true do end end)}), DropAction())
"""


def test_looping_and_failing_lua_is_contained(start_proc: Starter,
                                              responder_factory: ResponderFactory) -> None:
    proc = start_proc("pydist", CONF, {"backend": responder_factory().address})
    where = proc.addr()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(dns.message.make_query("loop.test.", "A").to_wire(), where)
        other = query(where, "other.test.", timeout=3)        # queued behind the loop
        looped = dns.message.from_wire(s.recv(4096))
    assert looped.rcode() == 2 and other is not None and other.answer
    r = query(where, "err.test.")
    assert r is not None and r.rcode() == 2
    r = query(where, "rloop.test.", timeout=3)                 # the rule did not match
    assert r is not None and r.rcode() == 0 and r.answer
    proc.wait_for(r"^LuaAction failed inside Lua, returning ServFail: .*ran for more than")
    proc.wait_for(r"^LuaAction failed inside Lua, returning ServFail: .*boom$")
    proc.wait_for(r"^LuaRule failed inside Lua: .*ran for more than")
    assert proc.alive()
