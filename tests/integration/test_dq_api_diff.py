"""The dq and dr that Lua rules see (facts §10.4), pydist against real dnsdist 1.7.3: field
values over UDP and TCP, writable fields, and which names exist (absent ones read as nil; the
DNSResponse lacks some DNSQuestion methods)."""
from __future__ import annotations

import dns.flags
import pytest

from tests.conftest import ResponderFactory, Starter, available_impls
from tests.helpers.pydist_proc import poll_until, query

NAMES = ("qname qtype qclass rcode remoteaddr localaddr dh len opcode tcp skipCache useECS "
         "ecsOverride ecsPrefixLength size pool getDO getContent getEDNSOptions getTrailingData "
         "getServerNameIndication getProtocol setTag getTag getTagArray spoof getHTTPPath "
         "setNegativeAndAdditionalSOA editTTLs setRestartable getQueryTime").split()
CONF = r"""
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
local names = {%s}
function show(tag, dq)
  local parts = {tag, dq.qname:toString(), tostring(dq.qtype), tostring(dq.qclass),
    tostring(dq.rcode), dq.remoteaddr:toString(), tostring(dq.len), tostring(dq.opcode),
    tostring(dq.tcp), tostring(dq.skipCache), tostring(dq.tempFailureTTL), tostring(dq:getDO()),
    tostring(#dq:getContent()), tostring(dq.dh:getRD()), tostring(dq.dh:getCD()),
    tostring(dq.dh:getAD()), tostring(dq.dh:getRA()), tostring(dq.dh:getAA()), dq:getProtocol(),
    dq:getTag("x"), tostring(dq.qname:countLabels()), tostring(dq.qname:wirelength()),
    tostring(dq.qname:isPartOf(newDNSName("test.")))}
  for _, n in ipairs(names) do
    local ok, v = pcall(function() return dq[n] end)
    table.insert(parts, n .. "=" .. tostring(ok and v ~= nil))
  end
  warnlog(table.concat(parts, "|"))
end
addAction(AllRule(), LuaAction(function(dq)
  dq:setTag("x", "y") show("Q", dq)
  dq.skipCache = true dq.tempFailureTTL = 7 dq.dh:setCD(true) show("Q2", dq)
  return DNSAction.None
end))
addResponseAction(AllRule(), LuaResponseAction(function(dr)
  show("R", dr) dr.rcode = DNSRCode.REFUSED dr.dh:setAA(false) return DNSResponseAction.None
end))
""" % ", ".join(f'"{n}"' for n in NAMES)


@pytest.mark.skipif(len(available_impls()) < 2, reason="dnsdist not installed")
def test_dq_and_dr_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    seen: dict[str, list[str]] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, CONF, {"backend": backend.address})
        r = query(proc.addr(), "Www.Example.test.", "AAAA", use_edns=0, want_dnssec=True)
        assert r is not None and r.rcode() == 5 and not r.flags & dns.flags.AA
        r = query(proc.addr(), "x.nx.test.", "TXT", tcp=True)
        assert r is not None and r.rcode() == 5
        poll_until(lambda p=proc: len([ln for ln in p.output.splitlines()
                                       if ln.startswith(("Q|", "Q2|", "R|"))]) >= 6, timeout=5)
        seen[impl] = [ln for ln in proc.output.splitlines() if ln.startswith(("Q|", "Q2|", "R|"))]
        proc.stop()
    for mine, theirs in zip(seen["pydist"], seen["dnsdist"], strict=False):
        assert mine == theirs
    assert len(seen["pydist"]) == len(seen["dnsdist"])
    assert "pool=false" in seen["pydist"][0] and "editTTLs=true" in seen["pydist"][2]
