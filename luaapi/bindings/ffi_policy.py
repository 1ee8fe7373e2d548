"""setServerPolicyLuaFFI(PerThread) / setPoolServerPolicyLuaFFI(PerThread): dnsdist's FFI policies.

dnsdist hands such a function C pointers (servers list, dq) and the function calls
`ffi.C.dnsdist_ffi_*` accessors, returning a 0-based server index. The accessors are the shared
shim's (luaapi/bindings/ffi_shim.py); server pointers are small integers cast to
`const dnsdist_ffi_server_t*` (index+1), valid during the call only, as in dnsdist.
"""
from __future__ import annotations

from typing import Any

from luaapi.bindings.ffi_shim import shim
from luaapi.bindings.servers import handle_for
from luaapi.convert import as_str, fail, is_function
from pydist.policies import ServerPolicy


def ffi_policy(rt: Any, name: str, func: Any) -> ServerPolicy:
    """A policy whose Lua function(servers_list, dq) returns a 0-based index (dnsdist's FFI)."""
    from luaapi.bindings.rules import dq_for_lua
    call = shim(rt).policy_call

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
    shim(rt)
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
        res = shim(rt).load_policy(as_str(code))
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
