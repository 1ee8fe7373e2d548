"""Response actions from Lua (dnsdist-lua-actions.cc's DNSResponseAction side) and the `dr` that
LuaResponseAction sees (dnsdist-lua-bindings-dnsquestion.cc)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.luacall import lua_verdict_caller
from luaapi import cppnames as C
from luaapi.bindings.rules import ActionHandle, ArityCheckedRuntime, DQHandle
from luaapi.convert import as_bool, as_int, as_str, fail, is_function
from luaapi.errors import DnsdistError
from pydist.rules import actions as A
from pydist.rules import response_actions as RA


class DRHandle(DQHandle):
    """dnsdist's DNSResponse: the dq fields and methods, plus editTTLs, minus those 1.7.3's
    DNSResponse lacks (they read as nil there too)."""

    useECS = ecsOverride = ecsPrefixLength = None
    getServerNameIndication = setProxyProtocolValues = addProxyProtocolValue = None
    getProxyProtocolValues = spoof = setNegativeAndAdditionalSOA = setHTTPResponse = None
    getHTTPPath = getHTTPQueryString = getHTTPHost = getHTTPScheme = getHTTPHeaders = None

    def editTTLs(self, f: Any, *a: Any) -> None:
        data = self._dq.data
        for section, qclass, qtype, off in RA.rr_ttl_fields(data):
            ttl = int.from_bytes(data[off:off + 4], "big")
            new = f(section, qclass, qtype, ttl)
            try:
                data[off:off + 4] = (int(new) & 0xFFFFFFFF).to_bytes(4, "big")
            except (TypeError, ValueError):
                continue


def _opt_bool(v: Any, default: bool) -> bool:
    return default if v is None else as_bool(v, C.OPT_BOOL)


def register(rt: Any) -> None:
    rt = ArityCheckedRuntime(rt)
    reg = rt.registry
    act = ActionHandle
    rt.fn("AllowResponseAction", lambda *a: act(RA.AllowResponseAction()))
    rt.fn("DropResponseAction", lambda *a: act(RA.DropResponseAction()))
    rt.fn("DelayResponseAction", lambda ms, *a: act(RA.DelayResponseAction(as_int(ms, C.INT))))
    for name in ("TagResponseAction", "SetTagResponseAction"):
        rt.fn(name, lambda k, v, *a: act(RA.SetTagResponseAction(as_str(k, C.STRING),
                                                                     as_str(v, C.STRING))))
    rt.fn("SetSkipCacheResponseAction", lambda *a: act(RA.SetSkipCacheResponseAction()))

    def log_response(path: Any = None, append: Any = None, buffered: Any = None,
                     verbose_only: Any = None, timestamps: Any = None, *a: Any) -> ActionHandle:
        p = "" if path is None else as_str(path, C.STRING)
        try:
            return act(RA.LogResponseAction(
                p, _opt_bool(append, False), _opt_bool(buffered, False),
                _opt_bool(verbose_only, True), _opt_bool(timestamps, False), log=rt.log,
                verbose=lambda: reg.settings.verbose))
        except OSError as e:
            raise DnsdistError(f"Unable to open file '{p}' for logging: {e.strerror}") from None
    rt.fn("LogResponseAction", log_response)

    def lua_response(cls: type, label: str) -> Any:
        def make(f: Any, *a: Any) -> ActionHandle:
            if not is_function(f):
                raise fail(f, C.LUA_RESPONSE_FUNC)
            return act(cls(lua_verdict_caller(rt, f, label, DRHandle, A.R_SERVFAIL,
                                              A.R_NONE)))
        return make
    rt.fn("LuaResponseAction", lua_response(RA.LuaResponseAction, "LuaResponseAction"))

    # LuaFFIResponseAction, LuaFFIPerThreadResponseAction: luaapi/bindings/ffi_rules.py
