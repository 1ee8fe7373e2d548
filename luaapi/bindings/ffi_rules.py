"""LuaFFIRule, LuaFFIAction, LuaFFIResponseAction and their PerThread forms (dnsdist-lua-ffi.cc):
functions given a `dnsdist_ffi_dnsquestion_t*` that call the shared shim's accessors
(luaapi/bindings/ffi_shim.py). As dnsdist 1.7.3: a rule that fails or returns no boolean
warns and does not match; an action that fails or returns no number warns and answers
ServFail; the per-thread code is loaded on first use, once: if that fails, the rule never
matches and the action does nothing from then on."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from luaapi import cppnames as C
from luaapi.bindings.ffi_shim import shim
from luaapi.bindings.luacall import protected_caller
from luaapi.bindings.response_rules import DRHandle
from luaapi.bindings.rules import (
    ActionHandle,
    ArityCheckedRuntime,
    DQHandle,
    RuleHandle,
)
from luaapi.convert import as_str, fail, is_function
from pydist.rules import actions as A
from pydist.rules import response_actions as RA
from pydist.rules import selectors as S


def _failure(ok: bool, value: Any, extra: Any) -> str | None:
    """What to log when the call failed (the traceback) or the shim refused its result (the
    "Trying to cast ..." text, no traceback, as LuaWrapper's); None when all went well."""
    if not ok:
        return str(value)
    return str(extra) if value is None else None


def rule_func(rt: Any, g: Any, label: str) -> Callable[[Any], bool]:
    call = protected_caller(rt, g, DQHandle)

    def matches(dq: Any) -> bool:
        ok, value, extra = call(dq)
        failure = _failure(ok, value, extra)
        if failure is not None:
            rt.log(f"{label} failed inside Lua: {failure}")
            return False
        return bool(value)
    return matches


def action_func(rt: Any, g: Any, label: str, handle_cls: type,
                on_error: int) -> Callable[[Any], tuple[int, str | None]]:
    call = protected_caller(rt, g, handle_cls)

    def act(dq: Any) -> tuple[int, str | None]:
        ok, value, extra = call(dq)
        failure = _failure(ok, value, extra)
        if failure is not None:
            rt.log(f"{label} failed inside Lua, returning ServFail: {failure}")
            return on_error, None
        return int(value), (None if extra is None else str(extra))
    return act


def register(rt: Any) -> None:
    rt = ArityCheckedRuntime(rt)
    m = shim(rt)

    def per_thread(code: Any, wrap: Any, ctype: str, none: Any) -> Any:
        return m.per_thread(as_str(code, C.STRING), wrap, ctype, none)

    def ffi_rule(f: Any, *a: Any) -> RuleHandle:
        if not is_function(f):
            raise fail(f, C.LUA_FFI_RULE_FUNC)
        return RuleHandle(S.LuaRule(rule_func(rt, m.rule(f), "LuaFFIRule"), "Lua FFI script"))
    rt.fn("LuaFFIRule", ffi_rule)

    def ffi_per_thread_rule(code: Any, *a: Any) -> RuleHandle:
        g = per_thread(code, m.rule, C.LUA_FFI_RULE_FUNC, False)
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
        g = per_thread(code, m.action, C.LUA_FFI_ACTION_FUNC, A.NONE)
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
        g = per_thread(code, m.action, C.LUA_FFI_RESPONSE_FUNC, A.R_NONE)
        return ActionHandle(RA.LuaResponseAction(action_func(
            rt, g, "LuaFFIPerThreadResponseAction", DRHandle, A.R_SERVFAIL),
            "Lua FFI per-thread script"))
    rt.fn("LuaFFIPerThreadResponseAction", ffi_per_thread_response)
