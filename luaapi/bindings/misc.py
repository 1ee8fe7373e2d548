"""Global settings, logging helpers and small utilities (dnsdist-lua.cc's odds and ends)."""
from __future__ import annotations

import os
import sys
from typing import Any

from luaapi.convert import as_bool, as_float, as_int, as_str, check_count
from luaapi.errors import LuaArgError
from pydist.registry import CHECK, CLIENT

VERSION = "1.7.3"

# Lua name -> (Settings attribute, converter, config-only?)
SETTERS = {
    "setUDPTimeout": ("udp_timeout", as_int, False),
    "setServFailWhenNoServer": ("servfail_when_no_server", as_bool, False),
    "setMaxUDPOutstanding": ("max_udp_outstanding", as_int, True),
    "setTCPRecvTimeout": ("tcp_recv_timeout", as_int, False),
    "setTCPSendTimeout": ("tcp_send_timeout", as_int, False),
    "setMaxTCPQueriesPerConnection": ("max_tcp_queries_per_connection", as_int, True),
    "setMaxTCPConnectionDuration": ("max_tcp_connection_duration", as_int, True),
    "setMaxTCPConnectionsPerClient": ("max_tcp_connections_per_client", as_int, True),
    "setMaxTCPClientThreads": ("max_tcp_client_threads", as_int, True),
    "setMaxTCPQueuedConnections": ("max_tcp_queued_connections", as_int, True),
    "setSecurityPollInterval": ("security_poll_interval", as_int, False),
    "setVerboseHealthChecks": ("verbose_health_checks", as_bool, False),
    "setAddEDNSToSelfGeneratedResponses": ("add_edns_to_self_generated", as_bool, False),
    "setStaleCacheEntriesTTL": ("stale_cache_entries_ttl", as_int, False),
    "setCacheCleaningDelay": ("cache_cleaning_delay", as_int, False),
    "setCacheCleaningPercentage": ("cache_cleaning_percentage", as_int, False),
    "setDropEmptyQueries": ("drop_empty_queries", as_bool, False),
    "setAllowEmptyResponse": ("allow_empty_response", as_bool, False),
    "truncateTC": ("truncate_tc", as_bool, False),
    "fixupCase": ("fixup_case", as_bool, False),
    "setECSSourcePrefixV4": ("ecs_source_prefix_v4", as_int, False),
    "setECSSourcePrefixV6": ("ecs_source_prefix_v6", as_int, False),
    "setECSOverride": ("ecs_override", as_bool, False),
}


def runtime_refused(rt: Any, name: str) -> bool:
    """Config-only functions called from the console print dnsdist's refusal and do nothing."""
    if rt.registry.config_done:
        rt.show(f"{name} cannot be used at runtime!\n")
        return True
    return False


def register(rt: Any) -> None:
    reg = rt.registry
    st = reg.settings

    for lua_name, (attr, conv, config_only) in SETTERS.items():
        def setter(value: Any = None, *rest: Any, _a: str = attr, _c: Any = conv,
                   _n: str = lua_name, _co: bool = config_only) -> None:
            if _co and runtime_refused(rt, _n):
                return
            setattr(st, _a, _c(value))
        rt.fn(lua_name, setter)

    def set_payload_size(n: Any) -> None:
        size = as_int(n)
        if size < 512:
            rt.log("setPayloadSizeOnSelfGeneratedAnswers() is set too low, using 512 instead!")
            size = 512
        elif size > 1500:
            rt.log("setPayloadSizeOnSelfGeneratedAnswers() is set too high, capping to 1500 instead!")
            size = 1500
        st.payload_size_self_generated = size
    rt.fn("setPayloadSizeOnSelfGeneratedAnswers", set_payload_size)

    def set_security_poll_suffix(s: Any) -> None:
        if not runtime_refused(rt, "setSecurityPollSuffix"):
            st.security_poll_suffix = as_str(s)
    rt.fn("setSecurityPollSuffix", set_security_poll_suffix)

    def set_ring_buffers(size: Any, shards: Any = None, *rest: Any) -> None:
        if runtime_refused(rt, "setRingBuffersSize"):
            return
        st.ring_buffer_size = as_int(size)
        if shards is not None:
            st.ring_buffer_shards = as_int(shards)
    rt.fn("setRingBuffersSize", set_ring_buffers)

    def set_rr_fail(b: Any) -> None:
        rt.registry.policy_settings.round_robin_fail_on_no_server = as_bool(b)
    rt.fn("setRoundRobinFailOnNoServer", set_rr_fail)

    def set_factor(attr: str, lua_name: str) -> Any:
        def setter(f: Any) -> None:
            v = as_float(f)
            if v < 1.0:   # as dnsdist 1.7.3: 0 is refused too (it is only the default)
                msg = f"Invalid value passed to {lua_name}()!"
                rt.log(msg)
                rt.show(msg + "\n")
                return
            setattr(rt.registry.policy_settings, attr, v)
        return setter
    rt.fn("setWeightedBalancingFactor", set_factor("weighted_balancing_factor",
                                                   "setWeightedBalancingFactor"))
    rt.fn("setConsistentHashingBalancingFactor",
          set_factor("consistent_hashing_balancing_factor", "setConsistentHashingBalancingFactor"))

    for name in ("infolog", "warnlog", "errlog"):
        def logger(msg: Any = "", *rest: Any) -> None:
            rt.log(as_str(msg))
        rt.fn(name, logger)

    def show(msg: Any = "", *rest: Any) -> None:
        rt.show(as_str(msg) + "\n")
    rt.fn("show", show, no_side_effect=True)

    rt.fn("showVersion", lambda *a: rt.show(f"dnsdist {VERSION}\n"), no_side_effect=True)
    rt.fn("inConfigCheck", lambda *a: reg.mode == CHECK, no_side_effect=True)
    rt.fn("inClientStartup", lambda *a: reg.mode == CLIENT, no_side_effect=True)

    def include_list(path: Any = None, *rest: Any) -> Any:
        """The *.conf files includeDirectory() runs, in lexical order (Lua runs them)."""
        check_count("includeDirectory", (path, *rest), 1)
        if runtime_refused(rt, "includeDirectory"):
            return rt.lua.table()
        d = as_str(path)
        if getattr(rt, "including", False):
            raise LuaArgError("includeDirectory cannot be used recursively!")
        if not os.path.isdir(d):
            rt.log(f"The included directory {d} does not exist!")
            return rt.lua.table()
        reg.included_directories.append(d)
        files = sorted(f for f in os.listdir(d)
                       if f.endswith(".conf") and not f.startswith(".")
                       and os.path.isfile(os.path.join(d, f)))
        return rt.lua.table_from([os.path.join(d, f) for f in files])
    rt.fn("__pydist_include_list", include_list)
    rt.lua.execute("""
      local list, loadfile, error, ipairs = __pydist_include_list, loadfile, error, ipairs
      function includeDirectory(d, ...)
        for _, path in ipairs(list(d, ...)) do
          local f, err = loadfile(path)
          if not f then error(err, 0) end
          f()
        end
      end""")

    def shutdown(*a: Any) -> None:
        # dnsdist exits on the spot: the console client sees the connection close, no reply
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(0)
    rt.fn("shutdown", shutdown)
