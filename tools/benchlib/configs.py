"""Lua configs: the fast local backend (a dnsdist that answers everything itself) and the
config under test, the same file for pydist and dnsdist. Loopback only, no security poll."""

from __future__ import annotations

# Answers every query itself so the backend (on the load generator's core) is never the
# bottleneck; a long TTL keeps every name in the cache under test for the whole run.
RESPONDER = """\
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addAction(QTypeRule(DNSQType.A), SpoofAction("192.0.2.1", {{ttl=86400}}))
addAction(QTypeRule(DNSQType.AAAA), SpoofAction("2001:db8::1", {{ttl=86400}}))
addAction(AllRule(), RCodeAction(DNSRCode.NOERROR))
"""

UNDER_TEST = """\
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer{{address="127.0.0.1:{backend_port}"}}
pc = newPacketCache({cache_size}, {{maxTTL=86400}})
getPool(""):setCache(pc)
"""

# Cheap rules that never match the benchmark's A queries: they measure the chain's cost.
# (dnsdist 1.7.3 has no DNSQType.NULL, so HINFO it is.)
NON_MATCHING_RULE = 'addAction(QTypeRule(DNSQType.HINFO), DropAction())  -- rule {i}\n'

LUA_ACTION = """\
function benchNoop(dq)
  return DNSAction.None, ""
end
addAction(AllRule(), LuaAction(benchNoop))
"""


def responder(port: int) -> str:
    """Config of the backend dnsdist."""
    return RESPONDER.format(port=port)


def under_test(
    port: int, backend_port: int, *, rules: int = 0, lua_action: bool = False,
    cache_size: int = 100_000, dot: tuple[int, str, str] | None = None, listeners: int = 1,
) -> str:
    """Config of the server under test, with optional extra rules, a no-op Lua action, a
    DoT listener (port, certificate file, key file), and `listeners` reusePort listeners on
    the port when more than one (dnsdist: a thread each; pydist: a worker process each)."""
    text = UNDER_TEST.format(port=port, backend_port=backend_port, cache_size=cache_size)
    if listeners > 1:
        local = f'"127.0.0.1:{port}", {{reusePort=true}}'
        text = text.replace(f'setLocal("127.0.0.1:{port}")', f"setLocal({local})")
        text += f"addLocal({local})\n" * (listeners - 1)
    if dot is not None:
        text += f'addTLSLocal("127.0.0.1:{dot[0]}", "{dot[1]}", "{dot[2]}")\n'
    text += "".join(NON_MATCHING_RULE.format(i=i) for i in range(rules))
    if lua_action:
        text += LUA_ACTION
    return text
