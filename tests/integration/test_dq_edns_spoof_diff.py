"""Lua's view of a query's EDNS options and dq:spoof() with addresses, pydist against real
dnsdist 1.7.3: `dq:getEDNSOptions()` maps each option code to an object with `:count()` and
`:getValues()`; `dq:spoof()` spoofs the addresses of a table of `newCA(...)` and takes a table of
strings as raw rdata (as 1.7.3 does, even for strings that read as addresses)."""
from __future__ import annotations

import dns.edns
import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import send_message
from tests.helpers.sides import assert_same, views_of_both

CONF = r"""
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", string.byte(c)) end))
end
addAction("opts.test.", LuaAction(function(dq)
  local codes = {}
  for code, opt in pairs(dq:getEDNSOptions()) do table.insert(codes, code) end
  table.sort(codes)
  local parts = {}
  local opts = dq:getEDNSOptions()
  for _, code in ipairs(codes) do
    local vals = {}
    for i, v in ipairs(opts[code]:getValues()) do table.insert(vals, i .. ":" .. hex(v)) end
    table.insert(parts, code .. "#" .. opts[code]:count() .. "=" .. table.concat(vals, ","))
  end
  warnlog("OPTS " .. dq.qname:toString() .. " " .. table.concat(parts, " "))
  return DNSAction.Spoof, "192.0.2." .. #codes
end))
addAction("ca.test.", LuaAction(function(dq)
  dq:spoof({newCA("192.0.2.10"), newCA("2001:db8::10"), newCA("192.0.2.11:53")})
  return DNSAction.HeaderModify
end))
addAction("str.test.", LuaAction(function(dq)
  dq:spoof({"\192\000\002\020", "\192\000\002\021"})   -- strings are raw rdata
  return DNSAction.HeaderModify
end))
addAction("one.test.", LuaAction(function(dq)
  dq:spoof(newCA("192.0.2.30"))
  return DNSAction.HeaderModify
end))
"""

OPTIONS = [
    [],
    [dns.edns.ECSOption.from_text("192.0.2.0/24"), dns.edns.GenericOption(10, b"\x01" * 8)],
    [dns.edns.GenericOption(65001, b"ab"), dns.edns.GenericOption(65001, b""),
     dns.edns.GenericOption(65001, b"xyz"), dns.edns.GenericOption(3, b"")],
]


def _answers(proc) -> list:
    out = []
    for i, options in enumerate(OPTIONS):
        q = dns.message.make_query(f"o{i}.opts.test.", "A", use_edns=0, options=options)
        r = send_message(proc.addr(), q)
        assert r is not None
        out.append(sorted(str(x) for x in r.answer))
        out.append(proc.wait_for(rf"OPTS o{i}\.opts\.test\.").split("OPTS ", 1)[1])
    for name, qtypes in (("ca", ("A", "AAAA", "ANY")), ("str", ("A",)), ("one", ("A",))):
        for qtype in qtypes:
            for tcp in (False, True):
                r = send_message(proc.addr(), dns.message.make_query(f"{name}.test.", qtype), tcp)
                assert r is not None
                # as sets: dnsdist shuffles spoofed addresses
                out.append((name, qtype, tcp, r.rcode(),
                            sorted(ln for x in r.answer for ln in x.to_text().splitlines())))
    # a lone newCA is not a table: the action fails with LuaWrapper's conversion error
    out.append(proc.wait_for("LuaAction failed inside Lua").split(":", 3)[-1])
    return out


def test_edns_options_and_spoof_as_dnsdist(start_proc: Starter,
                                           responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    assert_same(views_of_both(start_proc, CONF, lambda: {"backend": backend.address}, _answers))
