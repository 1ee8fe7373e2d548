"""LuaFFIRule, LuaFFIAction, LuaFFIResponseAction and their PerThread forms (dnsdist-lua-ffi.cc):
functions given a `dnsdist_ffi_dnsquestion_t*` that call the shared shim's accessors
(luaapi/bindings/ffi_shim.py). As dnsdist 1.7.3: a rule that fails or returns no boolean
warns and does not match; an action that fails or returns no number warns and answers
ServFail; the per-thread code is loaded on first use and again after each failure."""
from __future__ import annotations

from typing import Any, Callable

from luaapi import cppnames as C
from luaapi.bindings.ffi_shim import shim
from luaapi.bindings.luacall import error_text, guarded, shared_handle
from luaapi.bindings.response_rules import DRHandle
from luaapi.bindings.rules import ActionHandle, ArityCheckedRuntime, DQHandle, RuleHandle
from luaapi.convert import as_str, fail, is_function
from pydist.rules import actions as A
from pydist.rules import response_actions as RA
from pydist.rules import selectors as S


def _caller(rt: Any, g: Any, handle_cls: type) -> Callable[[Any], tuple[Any, Any]]:
    """g(dq handle) under the Lua guard: (value, result text) or (None, the error to log)."""
    pcall = guarded(rt)[0]
    handle, slot = shared_handle(rt, handle_cls)

    def call(dq: Any) -> tuple[Any, Any]:
        handle._dq = dq
        res = pcall(g, slot)
        if not isinstance(res, tuple):
            res = (res,)
        if not res or res[0] is not True:
            return None, error_text(res[1] if len(res) > 1 else "")
        value = res[1] if len(res) > 1 else None
        extra = res[2] if len(res) > 2 else None
        return value, extra
    return call


def rule_func(rt: Any, g: Any, label: str) -> Callable[[Any], bool]:
    call = _caller(rt, g, DQHandle)

    def matches(dq: Any) -> bool:
        value, extra = call(dq)
        if value is None:
            rt.log(f"{label} failed inside Lua: {extra}")
            return False
        return bool(value)
    return matches


def action_func(rt: Any, g: Any, label: str, handle_cls: type,
                on_error: int) -> Callable[[Any], tuple[int, str | None]]:
    call = _caller(rt, g, handle_cls)

    def act(dq: Any) -> tuple[int, str | None]:
        value, extra = call(dq)
        if value is None:
            rt.log(f"{label} failed inside Lua, returning ServFail: {extra}")
            return on_error, None
        return int(value), (None if extra is None else str(extra))
    return act


def register(rt: Any) -> None:
    rt = ArityCheckedRuntime(rt)
    m = shim(rt)

    def per_thread(code: Any, wrap: Any, ctype: str) -> Any:
        return m.per_thread(as_str(code, C.STRING), wrap, ctype)

    def ffi_rule(f: Any, *a: Any) -> RuleHandle:
        if not is_function(f):
            raise fail(f, C.LUA_FFI_RULE_FUNC)
        return RuleHandle(S.LuaRule(rule_func(rt, m.rule(f), "LuaFFIRule"), "Lua FFI script"))
    rt.fn("LuaFFIRule", ffi_rule)

    def ffi_per_thread_rule(code: Any, *a: Any) -> RuleHandle:
        g = per_thread(code, m.rule, C.LUA_FFI_RULE_FUNC)
        # sic: dnsdist 1.7.3 spells this one "Perthread"
        return RuleHandle(S.LuaRule(rule_func(rt, g, "LuaFFIPerthreadRule"),
                                    "Lua FFI per-thread script"))
    rt.fn("LuaFFIPerThreadRule", ffi_per_thread_rule)

    def ffi_action(f: Any, *a: Any) -> ActionHandle:
        if not is_function(f):
            raise fail(f, C.LUA_FFI_ACTION_FUNC)
        return ActionHandle(A.LuaAction(action_func(rt, m.action(f), "LuaFFIAction", DQHandle,
                                                    A.SERVFAIL), "Lua FFI script"))
    rt.fn("LuaFFIAction", ffi_action)

    def ffi_per_thread_action(code: Any, *a: Any) -> ActionHandle:
        g = per_thread(code, m.action, C.LUA_FFI_ACTION_FUNC)
        return ActionHandle(A.LuaAction(action_func(rt, g, "LuaFFIPerThreadAction", DQHandle,
                                                    A.SERVFAIL), "Lua FFI per-thread script"))
    rt.fn("LuaFFIPerThreadAction", ffi_per_thread_action)

    def ffi_response(f: Any, *a: Any) -> ActionHandle:
        if not is_function(f):
            raise fail(f, C.LUA_FFI_RESPONSE_FUNC)
        return ActionHandle(RA.LuaResponseAction(action_func(
            rt, m.action(f), "LuaFFIResponseAction", DRHandle, A.R_SERVFAIL), "Lua FFI script"))
    rt.fn("LuaFFIResponseAction", ffi_response)

    def ffi_per_thread_response(code: Any, *a: Any) -> ActionHandle:
        g = per_thread(code, m.action, C.LUA_FFI_RESPONSE_FUNC)
        return ActionHandle(RA.LuaResponseAction(action_func(
            rt, g, "LuaFFIPerThreadResponseAction", DRHandle, A.R_SERVFAIL),
            "Lua FFI per-thread script"))
    rt.fn("LuaFFIPerThreadResponseAction", ffi_per_thread_response)
