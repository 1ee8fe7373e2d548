"""Query rules at serve time, pydist against real dnsdist on the same config and queries:
drops, rcode answers, spoofs, TC, pools, Lua actions and NoRecurse (rcode, flags, counts)."""
from __future__ import annotations

import dns.flags
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.pydist_proc import query

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
newServer({address="{other}", pool="other"})
local smn = newSuffixMatchNode()
smn:add("spoof.test.")
addAction("drop.test.", DropAction())
addAction(QNameRule("nx.rules.test."), RCodeAction(DNSRCode.NXDOMAIN))
addAction(makeRule({"refused.test"}), RCodeAction(DNSRCode.REFUSED), {name="refuse"})
addAction(AndRule({QTypeRule("A"), SuffixMatchNodeRule(smn)}), SpoofAction({"192.0.2.7", "2001:db8::7"}))
addAction(AndRule({QTypeRule(DNSQType.AAAA), SuffixMatchNodeRule(smn)}), SpoofAction({"192.0.2.7", "2001:db8::7"}))
addAction("cname.test.", SpoofCNAMEAction("target.example."))
addAction("tc.test.", TCAction())
addAction("pool.test.", PoolAction("other"))
addAction("lua.test.", LuaAction(function(dq)
  if dq.qtype == DNSQType.TXT then return DNSAction.Refused end
  if dq.dh:getRD() then dq:setTag("rd", "1") end
  return DNSAction.Spoof, "192.0.2.9"
end))
addAction(TagRule("never"), DropAction())
addAction(RegexRule("^norec\\\\."), NoRecurseAction())
"""


def _flags(m: dns.message.Message) -> set[str]:
    return set(dns.flags.to_text(m.flags).split())


@pytest.fixture
def served(request: pytest.FixtureRequest, start_proc: Starter,
           responder_factory: ResponderFactory) -> tuple:
    impl = request.param
    main, other = responder_factory(), responder_factory()
    proc = start_proc(impl, CONF, {"backend": main.address, "other": other.address})
    return proc, main, other


@pytest.mark.parametrize("served", BOTH, indirect=True)
def test_query_rules_verdicts(served: tuple) -> None:
    proc, main, other = served
    where = proc.addr()
    assert query(where, "a.drop.test.", timeout=0.5) is None

    r = query(where, "nx.rules.test.", use_edns=0)
    assert r is not None and r.rcode() == 3 and len(r.answer) == 0
    assert {"QR", "RD", "RA"} <= _flags(r) and "AA" not in _flags(r)
    assert len(r.question) == 1 and r.edns == 0 and r.payload == 1232

    r = query(where, "x.refused.test.")
    assert r is not None and r.rcode() == 5 and r.edns == -1

    r = query(where, "www.spoof.test.", "A")
    assert r is not None and r.rcode() == 0
    assert [rr.to_text() for rr in r.answer[0]] == ["192.0.2.7"] and r.answer[0].ttl == 60
    r = query(where, "www.spoof.test.", "AAAA")
    assert [rr.to_text() for rr in r.answer[0]] == ["2001:db8::7"]

    r = query(where, "cname.test.", "A")
    assert r.answer[0][0].to_text() == "target.example."

    r = query(where, "tc.test.")
    assert r is not None and "TC" in _flags(r) and not r.answer
    r = query(where, "tc.test.", tcp=True)           # over TCP the rule does not apply
    assert r is not None and "TC" not in _flags(r) and r.answer

    r = query(where, "pool.test.")
    assert r is not None and r.answer and other.count("pool.test.") == 1
    assert main.count("pool.test.") == 0

    r = query(where, "lua.test.", "A")
    assert r.answer[0][0].to_text() == "192.0.2.9"
    r = query(where, "lua.test.", "TXT")
    assert r.rcode() == 5

    r = query(where, "norec.example.")               # forwarded with RD=0, client sees RD=1
    assert r is not None and "RD" in _flags(r) and r.answer
    assert main.count("norec.example.") == 1
    assert proc.alive()
