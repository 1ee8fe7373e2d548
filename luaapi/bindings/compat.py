"""Everything else the corpus calls: listeners, web server, loggers, eBPF, SNMP,
carbon and tuning knobs that pydist accepts with dnsdist 1.7.3's signatures. Directives it does
not carry out yet record themselves in registry.unsupported ("webserver() at line N") so the
engine can warn once per directive when serving."""
from __future__ import annotations

from typing import Any, Callable

from luaapi.bindings.misc import runtime_refused
from luaapi.bindings.objects import NMGHandle, _mask_text
from luaapi.bindings.rules import ActionHandle, response_config
from luaapi.convert import as_int, as_str, is_table, table_to_list
from luaapi.errors import LuaArgError
from pydist.dns.netmask import parse_address
from pydist.rules import actions as A
from pydist.rules import http as H

_MARK_LUA = """
local record, getinfo = __pydist_record_unsupported, debug.getinfo
function __pydist_mark(name, f)
  return function(...)
    local info = getinfo(2, "l")
    record(name, info and info.currentline or 0)
    return f(...)
  end
end
"""


def nargs(a: tuple, least: int) -> None:
    if len(a) < least:
        raise LuaArgError(f"This function requires at least {least} parameter(s)")


def install_marker(rt: Any) -> None:
    """The Lua-side wrapper that learns the config line of an unsupported directive."""
    if rt.globals["__pydist_mark"] is not None:
        return

    def record(name: str, line: Any) -> None:
        """One entry per directive (its first line), so serving warns once for each."""
        head = f"{name}() "
        if not any(u.startswith(head) for u in rt.registry.unsupported):
            rt.registry.unsupported.append(f"{name}() at line {int(line or 0)}")
    rt.globals["__pydist_record_unsupported"] = record
    rt.lua.execute(_MARK_LUA)


def unsupported(rt: Any, name: str, func: Callable) -> None:
    """Install func as Lua global name, recording each call as accepted-but-not-carried-out."""
    install_marker(rt)
    rt.globals[name] = rt.globals["__pydist_mark"](name, rt.wrap(func))


class ObjectHandle:
    """A dnsdist object pydist only keeps (loggers, BPF filters, KV stores, DoH frontends...)."""

    def __init__(self, kind: str, text: str = "") -> None:
        self.kind, self.text = kind, text

    def toString(self, *a: Any) -> str:
        return self.text

    tostring = toString

    # methods the corpus calls on such objects: accepted, nothing done
    def setResponsesMap(self, *a: Any) -> None: pass
    def reloadCertificates(self, *a: Any) -> None: pass
    def loadNewCertificatesAndKeys(self, *a: Any) -> None: pass
    def rotateTicketsKey(self, *a: Any) -> None: pass
    def loadTicketsKeys(self, *a: Any) -> None: pass
    def getStats(self, *a: Any) -> str: return ""
    def attachToAllBinds(self, *a: Any) -> None: pass
    def block(self, *a: Any) -> None: pass
    def blockQName(self, *a: Any) -> None: pass
    def unblock(self, *a: Any) -> None: pass
    def unblockQName(self, *a: Any) -> None: pass
    def reload(self, *a: Any) -> bool: return True
    def lookup(self, *a: Any) -> str: return ""
    def lookupSuffix(self, *a: Any) -> str: return ""


def register(rt: Any) -> None:
    install_marker(rt)

    # --- SNMP
    def snmp_agent(traps: Any = None, *a: Any) -> None:
        rt.registry.settings.snmp_traps = bool(traps)   # FFI send_trap then fails loudly
    unsupported(rt, "snmpAgent", snmp_agent)
    rt.fn("sendCustomTrap", lambda *a: None)

    # --- eBPF
    unsupported(rt, "newBPFFilter", lambda *a: (nargs(a, 3), ObjectHandle("BPFFilter"))[1])
    unsupported(rt, "newDynBPFFilter", lambda *a: ObjectHandle("DynBPFFilter"))
    unsupported(rt, "setDefaultBPFFilter", lambda *a: None)
    rt.fn("registerDynBPFFilter", lambda *a: None)
    rt.fn("unregisterDynBPFFilter", lambda *a: None)
    rt.fn("addBPFFilterDynBlocks", lambda *a: None)

    # --- other actions kept as objects
    simple = {
        "SNMPTrapAction": "send SNMP trap", "SNMPTrapResponseAction": "send SNMP trap",
    }
    for fname, text in simple.items():
        rt.fn(fname, lambda *a, _t=text, _r=fname.endswith("ResponseAction"):
              ActionHandle(A.ObjectAction(_t, _r)))
    rt.fn("SetAdditionalProxyProtocolValueAction", lambda t, v, *a: ActionHandle(
        A.SetAdditionalProxyProtocolValueAction(as_int(t), _raw(v))))
    rt.fn("SetProxyProtocolValuesAction", lambda t, *a: ActionHandle(
        A.SetProxyProtocolValuesAction(
            # dnsdist 1.7.3 hands its unordered_map out highest type first (observed)
            sorted(((as_int(k), _raw(v)) for k, v in t.items()), key=lambda kv: -kv[0])
            if is_table(t) else [])))
    def http_status_action(status: Any, body: Any = "", ctype: Any = "", opts: Any = None,
                           *a: Any) -> ActionHandle:
        raw = as_str(body).encode("latin-1")
        return ActionHandle(H.HTTPStatusAction(as_int(status), raw, as_str(ctype or ""),
                                               response_config(opts)))
    rt.fn("HTTPStatusAction", http_status_action)

    # --- tuning knobs accepted as no-ops (pydist has no such thread/pipe/socket option)
    config_only = ("setMaxCachedTCPConnectionsPerDownstream", "setOutgoingDoHWorkerThreads",
                   "setTCPInternalPipeBufferSize", "setUDPMultipleMessagesVectorSize",
                   "setUDPSocketBufferSizes", "addCapabilitiesToRetain")
    for fname in config_only:
        rt.fn(fname, lambda *a, _n=fname: runtime_refused(rt, _n) and None)
    runtime_ok = ("setRingBuffersLockRetries",
                  "setDoHDownstreamCleanupInterval", "setDoHDownstreamMaxIdleTime",
                  "setMaxIdleDoHConnectionsPerDownstream", "setTCPDownstreamCleanupInterval",
                  "setTCPDownstreamMaxIdleTime", "setOutgoingTLSSessionsCacheCleanupDelay",
                  "setOutgoingTLSSessionsCacheMaxTicketValidity",
                  "setOutgoingTLSSessionsCacheMaxTicketsPerBackend",
                  "clearConsoleHistory")
    for fname in runtime_ok:
        rt.fn(fname, lambda *a: None)
    _ = (NMGHandle, _mask_text, table_to_list, is_table)


def _with_port(addr: str) -> str:
    host, port = parse_address(addr, 53)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _raw(value: Any) -> bytes:
    """A Lua string's bytes (Lua strings reach us as latin-1 text)."""
    if isinstance(value, bytes):
        return value
    return str(as_str(value)).encode("latin-1", "replace")
