"""Pools and Lua policies end to end, on pydist and real dnsdist 1.7.3 (facts §2.5, §3)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BOTH, ResponderFactory, Starter, available_impls
from tests.helpers.pydist_proc import query, run_cli

LUA_POLICY = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{b0}", name="first"})
newServer({address="{b1}", name="second"})
-- the dq is usable: name, type, header
setServerPolicyLua("bysuffix", function(servers, dq)
  if dq.qname:isPartOf(newDNSName("two.test.")) or dq.qtype == DNSQType.TXT then
    return servers[2]
  end
  if dq.qname:isPartOf(newDNSName("none.test.")) then return nil end
  return servers[1]
end)
"""


@pytest.mark.parametrize("impl", BOTH)
def test_lua_policy_reads_the_dq(impl: str, start_proc: Starter,
                                 responder_factory: ResponderFactory) -> None:
    b0, b1 = responder_factory(), responder_factory()
    proc = start_proc(impl, LUA_POLICY, {"b0": b0.address, "b1": b1.address})
    proc.wait_for(r"Marking downstream .* as 'up'", count=2)
    assert query(proc.addr(), "x.one.test.") is not None
    assert query(proc.addr(), "x.two.test.") is not None
    assert query(proc.addr(), "y.one.test.", "TXT") is not None
    assert query(proc.addr(), "x.none.test.", timeout=0.5) is None     # nil: no server, drop
    assert (b0.count(".one.test."), b1.count(".one.test."), b1.count("x.two.test.")) == (1, 1, 1)
    assert b0.count("none.test.") + b1.count("none.test.") == 0


POOLS = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setServFailWhenNoServer({servfail})
newServer({address="{b0}", name="a", pool={"", "both"}})
s = newServer({address="{b1}", name="b", pool="both"})
s:addPool("extra")
s:rmPool("both")
getPool("empty")
addAction("empty.test.", PoolAction("empty"))
addAction("extra.test.", PoolAction("extra"))
addAction("both.test.", PoolAction("both"))
addAction("rr.test.", PoolAction("rr"))
newServer({address="{b0}", name="rr-a", pool="rr"})
newServer({address="{b1}", name="rr-b", pool="rr"})
setPoolServerPolicy(roundrobin, "rr")
setPoolServerPolicyLua("lastone", function(servers, dq) return servers[#servers] end, "both")
"""


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("servfail", [False, True])
def test_pools_membership_policies_and_empty_pool(impl: str, servfail: bool,
                                                  start_proc: Starter,
                                                  responder_factory: ResponderFactory) -> None:
    b0, b1 = responder_factory(), responder_factory()
    conf = POOLS.replace("{servfail}", str(servfail).lower())
    proc = start_proc(impl, conf, {"b0": b0.address, "b1": b1.address})
    proc.wait_for(r"Marking downstream .* as 'up'", count=4)
    for i in range(4):
        assert query(proc.addr(), f"q{i}.rr.test.") is not None
    assert (b0.count(".rr.test."), b1.count(".rr.test.")) == (2, 2)     # per-pool roundrobin
    assert query(proc.addr(), "q.extra.test.") is not None                # addPool
    assert b1.count("q.extra.test.") == 1
    assert query(proc.addr(), "q.both.test.") is not None                 # rmPool left only "a"
    assert b0.count("q.both.test.") == 1
    resp = query(proc.addr(), "q.empty.test.", timeout=0.5)               # pool without server
    if servfail:
        assert resp is not None and resp.rcode() == 2
    else:
        assert resp is None
    assert b0.count("empty.test.") + b1.count("empty.test.") == 0


FFI_POLICY = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{b0}", name="first"})
newServer({address="{b1}", name="last"})
local ffi = require("ffi")
local C = ffi.C
function pick(servers_list, dq)
  local n = tonumber(C.dnsdist_ffi_servers_list_get_count(servers_list))
  local srv = ffi.new("const dnsdist_ffi_server_t*[1]")
  C.dnsdist_ffi_servers_list_get_server(servers_list, n - 1, srv)
  if not C.dnsdist_ffi_server_is_up(srv[0]) then return 0 end
  local qn = ffi.new("const char*[1]")
  local len = ffi.new("size_t[1]")
  C.dnsdist_ffi_dnsquestion_get_qname_raw(dq, qn, len)
  local raw = ffi.string(qn[0], len[0])
  if raw:find("\\005first") then return 0 end
  if raw:find("\\007nowhere") then return n end          -- out of range: dropped
  if C.dnsdist_ffi_dnsquestion_get_qtype(dq) == DNSQType.TXT
     and ffi.string(C.dnsdist_ffi_server_get_name(srv[0])) == "last" then
    return n - 1
  end
  return 0
end
setServerPolicyLuaFFI("ffipick", pick)
"""


@pytest.mark.parametrize("impl", BOTH)
def test_ffi_policy_index_and_accessors(impl: str, start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    """setServerPolicyLuaFFI: the function uses dnsdist's ffi.C accessors, returns 0-based."""
    b0, b1 = responder_factory(), responder_factory()
    proc = start_proc(impl, FFI_POLICY, {"b0": b0.address, "b1": b1.address})
    proc.wait_for(r"Marking downstream .* as 'up'", count=2)
    assert query(proc.addr(), "first.ffi.test.", "TXT") is not None
    assert query(proc.addr(), "x.ffi.test.", "TXT") is not None
    assert query(proc.addr(), "y.ffi.test.", "A") is not None
    assert query(proc.addr(), "nowhere.ffi.test.", timeout=0.5) is None
    assert (b0.count("first.ffi.test."), b1.count("x.ffi.test."), b0.count("y.ffi.test.")) \
        == (1, 1, 1)
    assert b0.count("nowhere.ffi.test.") + b1.count("nowhere.ffi.test.") == 0


@pytest.mark.parametrize("impl", BOTH)
def test_failing_lua_policy_drops_silently(impl: str, start_proc: Starter,
                                           responder_factory: ResponderFactory) -> None:
    b = responder_factory()
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\nnewServer({address="{b0}"})\n'
            'setServerPolicyLua("bad", function(s, dq) error("oops") end)\n')
    proc = start_proc(impl, conf, {"b0": b.address})
    assert query(proc.addr(), "e.bad.test.", timeout=0.5) is None
    assert query(proc.addr(), "e.bad.test.", tcp=True, timeout=1) is None
    assert b.count("e.bad.test.") == 0 and proc.alive()
    assert not any("oops" in ln for ln in proc.lines)


PER_THREAD = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{b0}", name="first"})
newServer({address="{b1}", name="last", pool="p"})
newServer({address="{b0}", name="p-first", pool="p"})
addAction("p.test.", PoolAction("p"))
setServerPolicyLuaFFIPerThread("pt", [[
  local ffi = require("ffi")
  local C = ffi.C
  return function(servers_list, dq)
    return tonumber(C.dnsdist_ffi_servers_list_get_count(servers_list)) - 1
  end
]])
setPoolServerPolicyLuaFFIPerThread("ptp", [[
  return function(servers_list, dq) return 1 end
]], "p")
"""


@pytest.mark.parametrize("impl", BOTH)
def test_ffi_per_thread_policies(impl: str, start_proc: Starter,
                                 responder_factory: ResponderFactory) -> None:
    """The code string returns the policy function (global and per-pool variants)."""
    b0, b1 = responder_factory(), responder_factory()
    proc = start_proc(impl, PER_THREAD, {"b0": b0.address, "b1": b1.address})
    proc.wait_for(r"Marking downstream .* as 'up'", count=3)
    assert query(proc.addr(), "a.default.test.") is not None     # the only default-pool server
    assert query(proc.addr(), "a.p.test.") is not None           # index 1 of pool p
    assert (b0.count("a.default.test."), b0.count("a.p.test."), b1.count("a.p.test.")) \
        == (1, 1, 0)


MEMBERS = """
setSecurityPollSuffix("")
s = newServer({address="127.0.0.1:5301"})
s.order = 12
s.weight = 5
s.name = "renamed"
s.upStatus = true
print(s.order, s.weight, s.name, s.upStatus, s:getName(), s:getNameWithAddr())
"""


@pytest.mark.parametrize("impl", BOTH)
def test_server_members_are_writable(impl: str, tmp_path: Path) -> None:
    conf = tmp_path / "members.conf"
    conf.write_text(MEMBERS)
    res = run_cli(impl, ["--check-config", "-C", str(conf)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[0] == "12\t5\trenamed\ttrue\trenamed\trenamed (127.0.0.1:5301)"


POLICY_OBJECTS = """
setSecurityPollSuffix("")
print(tostring(whashed))
print(whashed.name, whashed.isLua)
local p = newServerPolicy("x", function() end)
print(p.name, p.isLua, tostring(p))
"""


@pytest.mark.parametrize("impl", BOTH)
def test_policy_objects_members_and_text(impl: str, tmp_path: Path) -> None:
    conf = tmp_path / "policies.conf"
    conf.write_text(POLICY_OBJECTS)
    res = run_cli(impl, ["--check-config", "-C", str(conf)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[:3] == ['ServerPolicy "whashed"', "whashed\tfalse",
                                           'x\ttrue\tServerPolicy (Lua) "x"']


SERVER_METHODS = """
setSecurityPollSuffix("")
s = newServer({address="127.0.0.1:5301", id="0B5E55ED-0000-4000-8000-000000000001", pool={"a","b"}})
print(s:getID(), s:getOutstanding(), s:getDrops(), s:getLatency(), s:isUp())
s:setQPS(10); s:setDown(); print(s:isUp()); s:setUp(); print(s:isUp())
s:setAuto(true); print(s:isUp()); s:setAuto(); print(s:isUp())
s:addPool("c"); s:rmPool("a")
for _, x in ipairs(getPoolServers("c")) do print("c", x:getName()) end
print(#getPoolServers("a"), #getPoolServers("b"))
print(pcall(getPoolServers, "nope"))
t = newServer("127.0.0.1:5302", 5)
print(getServer(1):getName(), #getServers())
"""


def test_server_methods_identical(tmp_path: Path) -> None:
    """States, pools, IDs (lowercased as boost prints them), errors: the same text on both."""
    conf = tmp_path / "methods.conf"
    conf.write_text(SERVER_METHODS)
    out = {impl: run_cli(impl, ["--check-config", "-C", str(conf)]).stdout
           for impl in available_impls()}
    assert out["pydist"].splitlines()[:9] == [
        "0b5e55ed-0000-4000-8000-000000000001\t0\t0\t0\tfalse", "false", "true", "true", "true",
        "c\t127.0.0.1:5301", "0\t1", "false\tCaught exception: No pool named nope",
        "127.0.0.1:5302\t2"]
    if "dnsdist" in out:
        assert out["pydist"] == out["dnsdist"]
