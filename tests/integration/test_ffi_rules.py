"""Lua FFI rules and actions (LuaFFIRule, LuaFFIAction, LuaFFIResponseAction and the PerThread
forms), pydist against real dnsdist 1.7.3: what the dnsdist_ffi_dnsquestion_* accessors read,
what the setters do to answers, tags and the cache, rule counters, and the log lines and
verdicts of functions that fail, return the wrong type or call an accessor 1.7.3 lacks."""
from __future__ import annotations

import re

import dns.edns
import dns.flags
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter, available_impls
from tests.helpers.pydist_proc import poll_until, query, run_cli

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
both_needed = pytest.mark.skipif(len(available_impls()) < 2, reason="dnsdist not installed")

DUMP_CONF = r"""
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
local ffi = require("ffi")
local C = ffi.C
local function bytes(p, n) return table.concat({ffi.string(p, n):byte(1, -1)}, ".") end
local function cstr(p) if p == nil then return "NULL" end return ffi.string(p) end
local function dump(tag, dq)
  local o = {tag}
  local p, sz = ffi.new("const void*[1]"), ffi.new("size_t[1]")
  local cp = ffi.new("const char*[1]")
  C.dnsdist_ffi_dnsquestion_get_remoteaddr(dq, p, sz); o[#o+1] = "remote=" .. bytes(p[0], sz[0])
  C.dnsdist_ffi_dnsquestion_get_masked_remoteaddr(dq, p, sz, 12)
  o[#o+1] = "masked=" .. bytes(p[0], sz[0])
  C.dnsdist_ffi_dnsquestion_get_localaddr(dq, p, sz); o[#o+1] = "local=" .. bytes(p[0], sz[0])
  o[#o+1] = "lport=" .. tostring(C.dnsdist_ffi_dnsquestion_get_local_port(dq) == {port})
  o[#o+1] = "rport=" .. tostring(C.dnsdist_ffi_dnsquestion_get_remote_port(dq) > 0)
  C.dnsdist_ffi_dnsquestion_get_qname_raw(dq, cp, sz); o[#o+1] = "qname=" .. bytes(cp[0], sz[0])
  o[#o+1] = "hash=" .. tostring(C.dnsdist_ffi_dnsquestion_get_qname_hash(dq, 42))
  for _, n in ipairs({"qtype", "qclass", "rcode", "opcode", "len", "size", "tcp", "skip_cache",
                      "use_ecs", "add_xpf", "ecs_override", "ecs_prefix_length",
                      "temp_failure_ttl", "do"}) do
    o[#o+1] = n .. "=" .. tostring(C["dnsdist_ffi_dnsquestion_get_" .. n](dq))
  end
  o[#o+1] = "tft=" .. tostring(C.dnsdist_ffi_dnsquestion_is_temp_failure_ttl_set(dq))
  C.dnsdist_ffi_dnsquestion_get_sni(dq, cp, sz); o[#o+1] = "sni=" .. tostring(sz[0])
  o[#o+1] = "tag=" .. cstr(C.dnsdist_ffi_dnsquestion_get_tag(dq, "k"))
  o[#o+1] = "path=" .. cstr(C.dnsdist_ffi_dnsquestion_get_http_path(dq))
  local eo = ffi.new("const dnsdist_ffi_ednsoption_t*[1]")
  local n = C.dnsdist_ffi_dnsquestion_get_edns_options(dq, eo); o[#o+1] = "edns=" .. tostring(n)
  for i = 0, tonumber(n) - 1 do
    o[#o+1] = eo[0][i].optionCode .. ":" .. bytes(eo[0][i].data, eo[0][i].len)
  end
  local ta = ffi.new("const dnsdist_ffi_tag_t*[1]")
  n = C.dnsdist_ffi_dnsquestion_get_tag_array(dq, ta); o[#o+1] = "tags=" .. tostring(n)
  for i = 0, tonumber(n) - 1 do o[#o+1] = cstr(ta[0][i].name) .. "=" .. cstr(ta[0][i].value) end
  local hh = ffi.new("const dnsdist_ffi_http_header_t*[1]")
  o[#o+1] = "headers=" .. tostring(C.dnsdist_ffi_dnsquestion_get_http_headers(dq, hh))
  o[#o+1] = "trailing=" .. tostring(C.dnsdist_ffi_dnsquestion_get_trailing_data(dq, cp))
  local h = ffi.cast("uint8_t*", C.dnsdist_ffi_dnsquestion_get_header(dq))
  o[#o+1] = "hdr=" .. h[2] .. "," .. h[3]
  warnlog(table.concat(o, "|"))
end
addAction(AllRule(), LuaFFIAction(function(dq)
  dump("Q", dq)
  C.dnsdist_ffi_dnsquestion_set_tag(dq, "k", "v1")
  C.dnsdist_ffi_dnsquestion_set_skip_cache(dq, true)
  C.dnsdist_ffi_dnsquestion_set_temp_failure_ttl(dq, 7)
  C.dnsdist_ffi_dnsquestion_set_ecs_prefix_length(dq, 20)
  C.dnsdist_ffi_dnsquestion_set_ecs_override(dq, true)
  dump("Q2", dq)
  C.dnsdist_ffi_dnsquestion_unset_temp_failure_ttl(dq)
  return DNSAction.None
end))
addResponseAction(AllRule(), LuaFFIResponseAction(function(dq)
  dump("R", dq)
  return DNSResponseAction.None
end))
"""


@both_needed
def test_accessors_read_what_dnsdist_reads(start_proc: Starter,
                                           responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    seen: dict[str, list[str]] = {}
    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, DUMP_CONF, {"backend": backend.address})
        r = query(proc.addr(), "Www.Example.test.", "AAAA", use_edns=0, want_dnssec=True,
                  options=[ecs])
        assert r is not None and r.rcode() == 0
        r = query(proc.addr(), "x.nx.test.", "TXT", tcp=True)
        assert r is not None and r.rcode() == 3
        poll_until(lambda p=proc: len(re.findall(r"^(?:Q|Q2|R)\|", p.output, re.MULTILINE)) >= 6)
        seen[impl] = [ln for ln in proc.output.splitlines() if ln.startswith(("Q|", "Q2|", "R|"))]
        proc.stop()
    assert seen["pydist"] == seen["dnsdist"]
    assert "qname=3.87.119.119.7.69" in seen["pydist"][0]      # the case the client sent
    assert "edns=1ULL|8:0.1.24.0.192.0.2" in seen["pydist"][0]
    assert "tag=v1" in seen["pydist"][1] and "temp_failure_ttl=7" in seen["pydist"][1]


ACT_CONF = r"""
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("%s")
newServer({address="{backend}"})
newServer({address="{backend}", pool="p2"})
pc = newPacketCache(100)
getPool(""):setCache(pc)
local ffi = require("ffi")
local C = ffi.C
local function qname(dq)
  local p, sz = ffi.new("const char*[1]"), ffi.new("size_t[1]")
  C.dnsdist_ffi_dnsquestion_get_qname_raw(dq, p, sz)
  return newDNSNameFromRaw(ffi.string(p[0], sz[0])):toString()
end
-- the qname and qtype
addAction(LuaFFIRule(function(dq) return qname(dq) == "refused.test." end),
          LuaFFIAction(function(dq)
            C.dnsdist_ffi_dnsquestion_set_rcode(dq, DNSRCode.REFUSED)
            return DNSAction.HeaderModify
          end))
addAction(LuaFFIRule(function(dq) return C.dnsdist_ffi_dnsquestion_get_qtype(dq) == DNSQType.MX end),
          LuaFFIAction(function(dq) return DNSAction.Nxdomain end))
-- a spoofed answer from set_result
addAction("spoof.test.", LuaFFIAction(function(dq)
  local s = "192.0.2.77"
  C.dnsdist_ffi_dnsquestion_set_result(dq, s, #s)
  return DNSAction.Spoof
end))
addAction("cname.test.", LuaFFIAction(function(dq)
  local s = "target.example."
  C.dnsdist_ffi_dnsquestion_set_result(dq, s, #s)
  return DNSAction.Spoof
end))
-- the remote address, a tag set by FFI and read by TagRule and by an FFI rule
addAction(LuaFFIRule(function(dq)
  local p, sz = ffi.new("const void*[1]"), ffi.new("size_t[1]")
  C.dnsdist_ffi_dnsquestion_get_remoteaddr(dq, p, sz)
  return ffi.string(p[0], sz[0]) == "\127\0\0\1"
end), LuaFFIAction(function(dq)
  C.dnsdist_ffi_dnsquestion_set_tag(dq, "from", "loopback")
  return DNSAction.None
end))
addAction(AndRule({QNameRule("tagged.test."), TagRule("from", "loopback")}),
          SpoofAction("192.0.2.88"))
addAction(AndRule({QNameRule("tag2.test."), LuaFFIRule(function(dq)
  local t = C.dnsdist_ffi_dnsquestion_get_tag(dq, "from")
  return t ~= nil and ffi.string(t) == "loopback"
end)}), RCodeAction(DNSRCode.NOTIMP))
-- skip the cache for one name
addAction("nocache.test.", LuaFFIAction(function(dq)
  C.dnsdist_ffi_dnsquestion_set_skip_cache(dq, true)
  return DNSAction.None
end))
-- per-thread forms
addAction(LuaFFIPerThreadRule([[
  local ffi = require("ffi")
  return function(dq) return ffi.C.dnsdist_ffi_dnsquestion_get_qtype(dq) == 99 end
]]), LuaFFIPerThreadAction([[
  local ffi = require("ffi")
  return function(dq)
    ffi.C.dnsdist_ffi_dnsquestion_set_rcode(dq, 4)
    return DNSAction.HeaderModify
  end
]]))
addAction("pool.test.", LuaFFIAction(function(dq)
  local s = "p2"
  C.dnsdist_ffi_dnsquestion_set_result(dq, s, #s)
  return DNSAction.Pool
end))
-- the header through its pointer, then a setter: both edits count
addAction("hdr.test.", LuaFFIAction(function(dq)
  local h = ffi.cast("uint8_t*", C.dnsdist_ffi_dnsquestion_get_header(dq))
  h[2] = bit.bor(h[2], 0x04)
  C.dnsdist_ffi_dnsquestion_set_rcode(dq, DNSRCode.NXDOMAIN)
  h[3] = bit.bor(h[3], 0x10)
  return C.dnsdist_ffi_dnsquestion_get_opcode(dq) == 0 and DNSAction.HeaderModify or DNSAction.Drop
end))
-- responses
addResponseAction("resp.test.", LuaFFIResponseAction(function(dq)
  C.dnsdist_ffi_dnsquestion_set_rcode(dq, DNSRCode.REFUSED)
  return DNSResponseAction.None
end))
addResponseAction("respdrop.test.", LuaFFIPerThreadResponseAction([[
  return function(dq) return DNSResponseAction.Drop end
]]))
""" % KEY

QUERIES = [("refused.test.", "A"), ("any.test.", "MX"), ("spoof.test.", "A"),
           ("spoof.test.", "AAAA"), ("cname.test.", "A"), ("tagged.test.", "A"),
           ("tag2.test.", "A"), ("nocache.test.", "A"), ("nocache.test.", "A"),
           ("cached.test.", "A"), ("cached.test.", "A"), ("pt.test.", "TYPE99"),
           ("pool.test.", "A"), ("resp.test.", "A"), ("respdrop.test.", "A"),
           ("plain.test.", "TXT"), ("hdr.test.", "A")]


def _answer(r: object) -> tuple:
    if r is None:
        return ("no answer",)
    return (r.rcode(), sorted(rr.to_text() for rr in r.answer),   # type: ignore[attr-defined]
            dns.flags.to_text(r.flags))                           # type: ignore[attr-defined]


def _counters(impl: str, conf: str) -> dict[str, str]:
    res = run_cli(impl, ["-C", conf, "-e", "dumpStats()"])
    stats = dict(re.findall(r"(\S+)\s+(\d+)", res.stdout))
    return {k: stats.get(k, "?") for k in ("queries", "rule-nxdomain", "rule-refused",
                                           "self-answered", "cache-hits", "cache-misses",
                                           "responses", "no-policy")}


@both_needed
def test_rules_and_actions_answer_as_dnsdist(start_proc: Starter,
                                             responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    got: dict[str, list] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, ACT_CONF, {"backend": backend.address})
        answers = [_answer(query(proc.addr(), n, t, timeout=1.0)) for n, t in QUERIES]
        rules = run_cli(impl, ["-C", str(proc.conf), "-e", "showRules()"]).stdout
        rrules = run_cli(impl, ["-C", str(proc.conf), "-e", "showResponseRules()"]).stdout
        got[impl] = [answers, rules, rrules, _counters(impl, str(proc.conf))]
        proc.stop()
    for mine, theirs in zip(got["pydist"], got["dnsdist"], strict=True):
        assert mine == theirs
    answers, rules = got["pydist"][0], got["pydist"][1]
    assert answers[0][0] == 5 and answers[1][0] == 3 and answers[11][0] == 4
    assert answers[2][1] == ["spoof.test. 60 IN A 192.0.2.77"]
    assert answers[5][1] == ["tagged.test. 60 IN A 192.0.2.88"] and answers[6][0] == 4
    assert answers[13][0] == 5 and answers[14] == ("no answer",)
    assert "Lua FFI script" in rules and "Lua FFI per-thread script" in rules
    assert answers[16][0] == 3 and "AA" in answers[16][2]


BAD_CONF = r"""
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
local ffi = require("ffi")
addAction("a.test.", LuaFFIAction(function(dq) error("boom") end))
addAction("b.test.", LuaFFIAction(function(dq) return nil end))
addAction("c.test.", LuaFFIAction(function(dq) return "x" end))
addAction("d.test.", LuaFFIAction(function(dq) return true end))
addAction("e.test.", LuaFFIAction(function(dq) return 2.7 end))
addAction("f.test.", LuaFFIAction(function(dq)
  local s = "forbar"
  ffi.C.dnsdist_ffi_dnsquestion_set_requestor_id(dq, s, #s)
  return DNSAction.Nxdomain
end))
addAction(AndRule({QNameRule("g.test."), LuaFFIRule(function(dq) return nil end)}), DropAction())
addAction(AndRule({QNameRule("h.test."), LuaFFIRule(function(dq) return 1 end)}), DropAction())
addAction(AndRule({QNameRule("i.test."), LuaFFIRule(function(dq) error("rboom") end)}),
          DropAction())
addAction(AndRule({QNameRule("j.test."),
                   LuaFFIPerThreadRule("return function(dq) error('ptboom') end")}), DropAction())
addAction(AndRule({QNameRule("k.test."), LuaFFIPerThreadRule("syntax error here")}), DropAction())
addAction("l.test.", LuaFFIPerThreadAction("return 5"))
addAction("m.test.", LuaFFIPerThreadAction("return function(dq) return nil end"))
addAction("n.test.", LuaFFIAction(function(dq) return 77 end))
addAction("o.test.", LuaFFIAction(function(dq) return -1 end))
addResponseAction("p.test.", LuaFFIResponseAction(function(dq) error("rsboom") end))
addResponseAction("q.test.", LuaFFIResponseAction(function(dq) return {} end))
addAction(NotRule(OrRule({QNameRule("p.test."), QNameRule("q.test.")})),
          RCodeAction(DNSRCode.NOTIMP))
"""
BAD_NAMES = list("abcdefghijklmno")
LOG = re.compile(r"^(LuaFFI|stack traceback|\t)")


@both_needed
def test_failing_functions_as_dnsdist(start_proc: Starter,
                                      responder_factory: ResponderFactory) -> None:
    """Errors, wrong return types and accessors 1.7.3 lacks: the same verdicts and log lines,
    each time, and the server keeps serving; per-thread code that fails to load is reported
    once, and then does nothing (l.test. goes on to NOTIMP the second time)."""
    backend = responder_factory()
    got: dict[str, tuple] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, BAD_CONF, {"backend": backend.address})
        rcodes = [_answer(query(proc.addr(), f"{n}.test.", timeout=1.0))[0]
                  for n in BAD_NAMES * 2]
        # responses: p.test./q.test. reach the backend, their response action fails
        resp = [_answer(query(proc.addr(), n, timeout=1.0))[0] for n in ("p.test.", "q.test.")]
        poll_until(lambda p=proc: p.output.count("LuaFFI") >= 24)
        log = [ln for ln in proc.output.splitlines() if LOG.match(ln)]
        got[impl] = (rcodes, resp, log)
        proc.stop()
    assert got["pydist"][0] == got["dnsdist"][0]
    assert got["pydist"][1] == got["dnsdist"][1]
    assert got["pydist"][2] == got["dnsdist"][2]
    rcodes, log = got["pydist"][0], got["pydist"][2]
    assert rcodes[:6] == [2, 2, 2, 2, 5, 2] and rcodes[13] == 4   # 2.7 is Refused; 77 goes on
    assert rcodes[11] == 2 and rcodes[11 + len(BAD_NAMES)] == 4
    assert sum('"syntax error here"' in ln for ln in log) == 1
    assert got["pydist"][1] == [2, 2]
    assert 'LuaFFIResponseAction failed inside Lua, returning ServFail: Trying to cast a lua ' \
        'variable from "table" to "i"' in log
    assert any("missing declaration for symbol 'dnsdist_ffi_dnsquestion_set_requestor_id'" in ln
               for ln in log)
    assert "\t[C]: in function '__index'" in log
    assert 'LuaFFIPerthreadRule failed inside Lua: [string "syntax error here"]:1: ' \
        "'=' expected near 'error'" in log


@pytest.mark.parametrize("impl", BOTH)
def test_bad_constructor_arguments(impl: str, tmp_path: object) -> None:
    """A non-function (or no code) is refused at config time with LuaWrapper's words."""
    from pathlib import Path
    d = Path(str(tmp_path))
    outs = []
    for snippet in ("LuaFFIRule(5)", 'LuaFFIAction("x")', "LuaFFIResponseAction({})",
                    "LuaFFIPerThreadRule({})", "LuaFFIPerThreadAction()"):
        conf = d / "c.conf"
        conf.write_text(f'setSecurityPollSuffix("")\n{snippet}\n')
        res = run_cli(impl, ["--check-config", "-C", str(conf)])
        outs.append((res.returncode, (res.stdout + res.stderr).splitlines()[0]))
    assert all(code == 1 for code, _ in outs)
    assert "St8functionIFbP25dnsdist_ffi_dnsquestion_tEE" in outs[0][1]
    assert "St8functionIFiP25dnsdist_ffi_dnsquestion_tEE" in outs[1][1]


TRAIL_CONF = r"""
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
local ffi = require("ffi")
local C = ffi.C
addAction(AllRule(), LuaFFIAction(function(dq)
  local cp = ffi.new("const char*[1]")
  local n = C.dnsdist_ffi_dnsquestion_get_trailing_data(dq, cp)
  local s = "NEWTAIL"
  warnlog("T|ffi|" .. tostring(n) .. "|" .. ffi.string(cp[0], n) .. "|"
          .. tostring(C.dnsdist_ffi_dnsquestion_set_trailing_data(dq, s, #s)))
  return DNSAction.None
end))
addAction(AllRule(), LuaAction(function(dq)
  warnlog("T|lua|" .. dq:getTrailingData() .. "|" .. tostring(dq:setTrailingData("LAST")))
  return DNSAction.None
end))
addAction(AndRule({QNameRule("plain.test."), TrailingDataRule()}), RCodeAction(DNSRCode.NOTIMP))
"""


@both_needed
def test_trailing_data_as_dnsdist(start_proc: Starter,
                                  responder_factory: ResponderFactory) -> None:
    """Read and replaced by FFI and by dq:, matched by TrailingDataRule, forwarded."""
    import socket

    import dns.message
    got: dict[str, tuple] = {}
    for impl in ("dnsdist", "pydist"):
        backend = responder_factory()
        proc = start_proc(impl, TRAIL_CONF, {"backend": backend.address})
        rcodes = []
        for name, tail in (("tail.test.", b"TAILDATA"), ("plain.test.", b"")):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2)
                s.sendto(dns.message.make_query(name, "A").to_wire() + tail, proc.addr())
                rcodes.append(dns.message.from_wire(s.recv(4096), ignore_trailing=True).rcode())
        poll_until(lambda p=proc: p.output.count("T|") >= 4)
        sent = [raw[-4:] for _, _, raw in backend.raw]
        got[impl] = (rcodes, [ln for ln in proc.output.splitlines() if ln.startswith("T|")],
                     sent)
        proc.stop()
    assert got["pydist"] == got["dnsdist"]
    assert got["pydist"][1][:2] == ["T|ffi|8ULL|TAILDATA|true", "T|lua|NEWTAIL|true"]
    assert got["pydist"][0] == [0, 4] and b"LAST" in got["pydist"][2]


LOUD_CONF = r"""
setSecurityPollSuffix("")
setLocal("%s:{port}")
newServer({address="{backend}"})
%s
local ffi = require("ffi")
addAction(AllRule(), LuaFFIAction(function(dq)
  local p, sz = ffi.new("const void*[1]"), ffi.new("size_t[1]")
  %s
  return DNSAction.None
end))
"""


@pytest.mark.parametrize("listen,setting,call,message", [
    # dnsdist sends the trap when snmpAgent(true) asked for traps; pydist has no SNMP agent
    ("127.0.0.1", "snmpAgent(true)", 'ffi.C.dnsdist_ffi_dnsquestion_send_trap(dq, "a trap", 6)',
     "send_trap: pydist has no SNMP agent"),
], ids=["send_trap"])
def test_accessor_pydist_cannot_honour_fails_loudly(
        listen: str, setting: str, call: str, message: str, start_proc: Starter,
        responder_factory: ResponderFactory) -> None:
    """Said in the log, with a ServFail answer, rather than done wrongly in silence."""
    conf = LOUD_CONF % (listen, setting, call)
    proc = start_proc("pydist", conf, {"backend": responder_factory().address})
    r = query(proc.addr(), "www.test.")
    assert r is not None and r.rcode() == 2
    line = proc.wait_for(r"^LuaFFIAction failed inside Lua, returning ServFail: ")
    assert message in line
