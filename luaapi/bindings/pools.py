"""Pools and server policies (getPool, setServerPolicy, the built-in policy globals)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.servers import ServerHandle, handle_for
from luaapi.convert import as_bool, as_int, as_str, fail, is_function
from luaapi.errors import DnsdistError, LuaArgError
from pydist.policies import ServerPolicy
from pydist.registry import ServerPool


class PoolHandle:
    """Lua's view of a ServerPool."""

    def __init__(self, rt: Any, pool: ServerPool) -> None:
        self.rt, self.pool = rt, pool

    def setCache(self, cache: Any, *a: Any) -> None:
        from luaapi.bindings.caches import CacheHandle
        if not isinstance(cache, CacheHandle):
            raise fail(cache, "St10shared_ptrI18DNSDistPacketCacheE")
        self.pool.cache = cache.cache

    def getCache(self, *a: Any) -> Any:
        from luaapi.bindings.caches import CacheHandle
        return CacheHandle.wrap(self.pool.cache)

    def unsetCache(self, *a: Any) -> None:
        self.pool.cache = None

    def getECS(self, *a: Any) -> bool:
        return self.pool.ecs

    def setECS(self, b: Any, *a: Any) -> None:
        self.pool.ecs = as_bool(b)

    def toString(self, *a: Any) -> str:
        return self.pool.name

    tostring = toString

    def console_str(self) -> str:
        return self.pool.name


class PolicyHandle:
    """Lua's view of a ServerPolicy."""

    LUA_FIELDS = ("name", "isLua")

    def __init__(self, policy: ServerPolicy) -> None:
        self.policy = policy
        self.name = policy.name
        self.isLua = policy.is_lua

    def toString(self, *a: Any) -> str:
        return self.policy.to_string()

    tostring = toString

    def __str__(self) -> str:            # Lua's tostring(policy), as dnsdist's __tostring
        return self.policy.to_string()
    # no console_str: dnsdist 1.7.3's console cannot print a policy object either


def lua_policy(rt: Any, name: str, func: Any) -> ServerPolicy:
    """A policy whose choice is made by a Lua function(servers, dq) -> server."""
    from luaapi.bindings.rules import dq_for_lua

    def choose(servers: Any, dq: Any) -> Any:
        table = rt.lua.table_from([handle_for(rt, s) for s in servers])
        try:
            res = func(table, None if dq is None else dq_for_lua(rt, dq))
        except Exception as e:  # as dnsdist: the query is dropped, logged only when verbose
            if rt.registry.settings.verbose:
                rt.log(f"Error in Lua policy '{name}': {e}")
            return None
        return res.server if isinstance(res, ServerHandle) else None
    return ServerPolicy(name, choose, is_lua=True)


def _policy_arg(p: Any) -> ServerPolicy:
    if isinstance(p, PolicyHandle):
        return p.policy
    raise fail(p, "ServerPolicy")


def register(rt: Any) -> None:
    reg = rt.registry
    for name, pol in reg.builtin_policies.items():
        rt.globals[name] = PolicyHandle(pol)

    def get_pool(name: Any = "", *a: Any) -> PoolHandle:
        pool = reg.get_pool(as_str(name))
        h = getattr(pool, "lua_handle", None)
        if h is None:
            h = pool.lua_handle = PoolHandle(rt, pool)
        return h
    rt.fn("getPool", get_pool)

    def set_server_policy(p: Any, *a: Any) -> None:
        reg.set_policy(_policy_arg(p))
    rt.fn("setServerPolicy", set_server_policy)

    def new_server_policy(name: Any, f: Any, *a: Any) -> PolicyHandle:
        if not is_function(f):
            raise fail(f, "std::function")
        return PolicyHandle(lua_policy(rt, as_str(name), f))
    rt.fn("newServerPolicy", new_server_policy)

    def set_lua_policy(name: Any, f: Any, *a: Any) -> None:
        reg.set_policy(new_server_policy(name, f).policy)
    rt.fn("setServerPolicyLua", set_lua_policy)

    def set_pool_policy(p: Any, pool: Any, *a: Any) -> None:
        reg.set_policy(_policy_arg(p), as_str(pool))
    rt.fn("setPoolServerPolicy", set_pool_policy)

    def set_pool_lua_policy(name: Any, f: Any, pool: Any, *a: Any) -> None:
        reg.set_policy(new_server_policy(name, f).policy, as_str(pool))
    rt.fn("setPoolServerPolicyLua", set_pool_lua_policy)

    def set_perturbation(n: Any = None, *a: Any) -> None:
        if n is None:
            raise LuaArgError("This function requires at least 1 parameter(s)")
        v = as_int(n, "m") % (1 << 64)
        if v > 0xFFFFFFFF:
            raise DnsdistError(f"The value ({v}) passed to setWHashedPertubation is too large, "
                               "the maximum is 4294967295")
        reg.policy_settings.hash_perturbation = v
    rt.fn("setWHashedPertubation", set_perturbation)

    rt.fn("showServerPolicy", lambda *a: rt.show(reg.policy.name + "\n"), no_side_effect=True)

    def show_pool_policy(pool: Any, *a: Any) -> None:
        p = reg.pools.get(as_str(pool))
        if p is None:
            raise DnsdistError(f"No pool named {as_str(pool)}")
        rt.show(reg.policy_for(p).name + "\n")
    rt.fn("showPoolServerPolicy", show_pool_policy, no_side_effect=True)
