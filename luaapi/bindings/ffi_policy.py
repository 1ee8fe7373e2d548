"""setServerPolicyLuaFFI(PerThread) / setPoolServerPolicyLuaFFI(PerThread): dnsdist's FFI policies.

dnsdist hands such a function C pointers (servers list, dq) and the function calls
`ffi.C.dnsdist_ffi_*` accessors, returning a 0-based server index. pydist has no such C
symbols, so `require("ffi")` returns LuaJIT's ffi whose `C` namespace first looks in a table
of Lua implementations of the server-list and question accessors below, then in the real C
namespace. Server pointers are small integers cast to `const dnsdist_ffi_server_t*` (index+1),
valid during the call only, as in dnsdist.
"""
from __future__ import annotations

from typing import Any

from luaapi.bindings.servers import handle_for
from luaapi.convert import as_str, fail, is_function
from pydist.dns.burtle import burtle_ci
from pydist.policies import ServerPolicy

SHIM = r"""
local real = require("ffi")
pcall(real.cdef, [[
typedef struct dnsdist_ffi_dnsquestion_t dnsdist_ffi_dnsquestion_t;
typedef struct dnsdist_ffi_servers_list_t dnsdist_ffi_servers_list_t;
typedef struct dnsdist_ffi_server_t dnsdist_ffi_server_t;
]])
local cast, tonumber, qname_hash = real.cast, tonumber, __pydist_ffi_qname_hash
local servers, dqh, keep = {}, nil, {}
local function srv(p) return servers[tonumber(cast("intptr_t", p))] end
local shim = {
  dnsdist_ffi_servers_list_get_count = function(list) return #servers end,
  dnsdist_ffi_servers_list_get_server = function(list, idx, out)
    local i = tonumber(idx)
    if i < 0 or i >= #servers then error("server index out of range", 2) end
    out[0] = cast("const dnsdist_ffi_server_t*", i + 1)
  end,
  dnsdist_ffi_server_is_up = function(p) return srv(p):isUp() end,
  dnsdist_ffi_server_get_outstanding = function(p) return srv(p):getOutstanding() end,
  dnsdist_ffi_server_get_weight = function(p) return srv(p).weight end,
  dnsdist_ffi_server_get_order = function(p) return srv(p).order end,
  dnsdist_ffi_server_get_latency = function(p) return srv(p):getLatency() end,
  dnsdist_ffi_server_get_name = function(p)
    local s = srv(p):getName(); keep[#keep + 1] = s; return s
  end,
  dnsdist_ffi_server_get_name_with_addr = function(p)
    local s = srv(p):getNameWithAddr(); keep[#keep + 1] = s; return s
  end,
  dnsdist_ffi_dnsquestion_get_qtype = function(dq) return dqh.qtype end,
  dnsdist_ffi_dnsquestion_get_qclass = function(dq) return dqh.qclass end,
  dnsdist_ffi_dnsquestion_is_tcp = function(dq) return dqh.tcp end,
  dnsdist_ffi_dnsquestion_get_qname_raw = function(dq, out, size)
    local s = dqh.qname:toDNSString(); keep[#keep + 1] = s; out[0] = s; size[0] = #s
  end,
  dnsdist_ffi_dnsquestion_get_qname_hash = function(dq, init)
    return qname_hash(dqh, tonumber(init))
  end,
  dnsdist_ffi_dnsquestion_get_tag = function(dq, label)
    local s = dqh:getTag(real.string(label)); keep[#keep + 1] = s; return s
  end,
}
local C = setmetatable({}, {__index = function(_, k)
  local f = shim[k]
  if f ~= nil then return f end
  return real.C[k]
end})
package.loaded.ffi = setmetatable({C = C}, {__index = real})
local list_ptr = cast("const dnsdist_ffi_servers_list_t*", 0)
local dq_ptr = cast("const dnsdist_ffi_dnsquestion_t*", 0)
function __pydist_ffi_load_per_thread(code)
  local chunk, err = loadstring(code)
  if not chunk then return nil, err end
  local ok, f = pcall(chunk)
  if not ok then return nil, f end
  return f
end
function __pydist_ffi_policy_call(f, list, dq)
  servers, dqh, keep = list, dq, {}
  local ok, res = pcall(f, list_ptr, dq_ptr)
  servers, dqh, keep = {}, nil, {}
  if not ok then error(res, 0) end
  return tonumber(res)
end
"""


def qname_hash(dq: Any, init: Any) -> int:
    """dnsdist_ffi_dnsquestion_get_qname_hash: lookup2 of the lowercased wire qname."""
    return burtle_ci(dq.qname.name.to_wire(), int(init or 0))


def ffi_policy(rt: Any, name: str, func: Any) -> ServerPolicy:
    """A policy whose Lua function(servers_list, dq) returns a 0-based index (dnsdist's FFI)."""
    from luaapi.bindings.rules import dq_for_lua
    call = rt.globals["__pydist_ffi_policy_call"]

    def choose(servers: Any, dq: Any) -> Any:
        table = rt.lua.table_from([handle_for(rt, s) for s in servers])
        try:
            idx = call(func, table, None if dq is None else dq_for_lua(rt, dq))
        except Exception as e:  # as dnsdist: the query is dropped, logged only when verbose
            if rt.registry.settings.verbose:
                rt.log(f"Error in Lua FFI policy '{name}': {e}")
            return None
        if idx is None or not 0 <= int(idx) < len(servers):
            return None          # dnsdist's servers.at() throws: the query is dropped
        return servers[int(idx)]
    return ServerPolicy(name, choose, is_lua=True)


def register(rt: Any) -> None:
    rt.globals["__pydist_ffi_qname_hash"] = qname_hash
    rt.lua.execute(SHIM)
    reg = rt.registry

    def policy_of(name: Any, f: Any) -> ServerPolicy:
        if not is_function(f):
            raise fail(f, "std::function")
        return ffi_policy(rt, as_str(name), f)

    def set_ffi(name: Any, f: Any, *a: Any) -> None:
        reg.set_policy(policy_of(name, f))
    rt.fn("setServerPolicyLuaFFI", set_ffi)

    def set_pool_ffi(name: Any, f: Any, pool: Any, *a: Any) -> None:
        reg.set_policy(policy_of(name, f), as_str(pool))
    rt.fn("setPoolServerPolicyLuaFFI", set_pool_ffi)

    def per_thread(name: Any, code: Any) -> ServerPolicy:
        """dnsdist runs the code in each thread's own Lua state; pydist has one thread, so
        the function it returns is loaded once here. Broken code: every query is dropped."""
        res = rt.globals["__pydist_ffi_load_per_thread"](as_str(code))
        f = res[0] if isinstance(res, tuple) else res
        if not is_function(f):
            rt.log(f"Error loading the Lua FFI per-thread policy '{as_str(name)}': "
                   f"{res[1] if isinstance(res, tuple) else 'no function returned'}")
            return ServerPolicy(as_str(name), lambda servers, dq: None, is_lua=True)
        return ffi_policy(rt, as_str(name), f)
    rt.fn("setServerPolicyLuaFFIPerThread", lambda name, code, *a: reg.set_policy(
        per_thread(name, code)))
    rt.fn("setPoolServerPolicyLuaFFIPerThread", lambda name, code, pool, *a: reg.set_policy(
        per_thread(name, code), as_str(pool)))
