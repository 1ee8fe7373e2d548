"""Calling user Lua from the packet path with dnsdist's outcome when it fails: a warning with
the Lua traceback, and a fallback verdict (LuaAction and LuaResponseAction answer ServFail)."""
from __future__ import annotations

from typing import Any, Callable

LUA_TIME_LIMIT = 0.2    # CPU seconds one Lua rule/action call may use before it is stopped

# The guard: a count hook that stops a call running past its deadline (a Lua rule that loops
# would otherwise stall every client: one loop, one thread). Hooks do not fire inside LuaJIT
# traces, so the JIT is switched off once a config has Lua rules or actions.
# os.clock() is a system call (about 0.7 us, more than the rest of a call), so a call does not
# read it: the call's first hook (at most 10000 VM instructions in) sets the deadline, and
# only a call still running then pays for clock reads. The limit counts from there.
_GUARD_LUA = """
local clock, error, sethook, xpcall, huge = os.clock, error, debug.sethook, xpcall, math.huge
local traceback, tostring = debug.traceback, tostring
local limit = ...
local deadline = huge
local started = false   -- a guarded call is running and has not read the clock yet
local function hook()
  if started then
    started = false
    deadline = clock() + limit
  elseif clock() > deadline then
    deadline = huge
    error(string.format("Lua code ran for more than %g s and was stopped by pydist", limit), 2)
  end
end
local function handler(e) return traceback(tostring(e), 1) end
local function finish(...) started = false deadline = huge return ... end
if jit then jit.off() end
sethook(hook, "", 10000)
local slots = {}
return function(f, slot)
  started = true
  return finish(xpcall(f, handler, slots[slot]))
end, function(f, slot)
  started = true
  return finish(f(slots[slot]))
end, function(slot, handle)
  slots[slot] = handle
end, function()
  started = false deadline = huge
end, function(f, slot)
  -- f bound to its handle: a call from Python pushes no argument, and the usual outcome
  -- (a number and "") comes back as the number alone, one value for lupa to convert
  local handle = slots[slot]
  local function verdict(ok, v, extra, ...)
    started = false deadline = huge
    if ok == true and extra == "" and type(v) == "number" and v % 1 == 0
       and select("#", ...) == 0 then
      return v
    end
    return ok, v, extra, ...
  end
  return function()
    started = true
    return verdict(xpcall(f, handler, handle))
  end
end
"""


def guarded(rt: Any) -> tuple[Any, Any, Any, Any]:
    """(protected call, plain call, set slot, end a plain call that raised): f(slots[slot])
    under the time limit; one set per runtime. A plain call that raises never reaches its
    own ending, and the guard would otherwise stay armed for whatever Lua runs next."""
    funcs = getattr(rt, "_lua_guard", None)
    if funcs is None:
        *funcs, rt._lua_binder = rt.lua.execute(_GUARD_LUA, LUA_TIME_LIMIT)
        funcs = rt._lua_guard = tuple(funcs)
    return funcs


def bound_verdict_call(rt: Any, f: Any, slot: int) -> Any:
    """f(slots[slot]) under the guard as a Lua function of no argument: its results as the
    protected call gives them, except (true, number, "") which comes back as the number."""
    guarded(rt)
    return rt._lua_binder(f, slot)


def shared_handle(rt: Any, handle_cls: type) -> tuple[Any, int]:
    """The one `dq` (or `dr`) object Lua sees, re-pointed at each query, and its slot: pushing
    a new Python object into Lua for every query costs a userdata, its metatable and a GC."""
    handles = rt.__dict__.setdefault("_shared_handles", {})
    entry = handles.get(handle_cls)
    if entry is None:
        handle = handle_cls(None, rt)
        slot = len(handles) + 1
        guarded(rt)[2](slot, handle)
        entry = handles[handle_cls] = (handle, slot)
    return entry


def error_text(tb: Any) -> str:
    """The traceback as dnsdist prints it: our xpcall plumbing (last frames) cut off."""
    lines = []
    for line in str(tb).split("\n"):
        if line == "\t[C]: in function 'xpcall'" or line.startswith("\t[builtin#"):
            break
        if '[string "<python>"]' not in line and '[string "<pydist>"]' not in line:   # plumbing
            lines.append(line)
    return "\n".join(lines)


def protected_caller(rt: Any, f: Any,
                     handle_cls: type) -> Callable[[Any], tuple[bool, Any, Any]]:
    """f(dq handle) under the guard: (True, first, second result) or (False, the error as
    dnsdist prints it, None)."""
    pcall = guarded(rt)[0]
    handle, slot = shared_handle(rt, handle_cls)

    def call(dq: Any) -> tuple[bool, Any, Any]:
        handle._dq = dq
        res = pcall(f, slot)
        if not isinstance(res, tuple):
            res = (res,)
        if not res or res[0] is not True:
            return False, error_text(res[1] if len(res) > 1 else ""), None
        return True, (res[1] if len(res) > 1 else None), (res[2] if len(res) > 2 else None)
    return call


def lua_verdict_caller(rt: Any, f: Any, label: str, handle_cls: type,
                       on_error: int, on_bad: int) -> Callable[[Any], tuple[int, str | None]]:
    """A Python callable running f(dq) -> (verdict[, text]); errors (and calls running past
    LUA_TIME_LIMIT) warn and give on_error. It runs per query, so the usual outcome (an
    integer verdict, maybe a text) is read inline; everything else goes through
    verdict_of()."""
    handle, slot = shared_handle(rt, handle_cls)
    bound = bound_verdict_call(rt, f, slot)

    def call(dq: Any) -> tuple[int, str | None]:
        handle._dq = dq
        res = bound()
        if type(res) is int:      # (verdict, ""): dnsdist's usual `return DNSAction.None, ""`
            return res, ""
        if type(res) is tuple and res[0] is True and type(res[1]) is int:
            if len(res) == 2:
                return res[1], None
            extra = res[2]
            return res[1], (None if extra is None else str(extra))
        return verdict_of(rt, res, label, on_error, on_bad)
    return call


def verdict_of(rt: Any, res: Any, label: str, on_error: int,
               on_bad: int) -> tuple[int, str | None]:
    """What a guarded call's results mean as a verdict, in every case (errors logged)."""
    if not isinstance(res, tuple):
        res = (res,)
    if not res or res[0] is not True:
        rt.log(f"{label} failed inside Lua, returning ServFail: "
               f"{error_text(res[1] if len(res) > 1 else '')}")
        return on_error, None
    verdict = res[1] if len(res) > 1 else None
    extra = res[2] if len(res) > 2 else None
    try:
        v = int(verdict)
    except (TypeError, ValueError):
        return on_bad, None
    return v, (None if extra is None else str(extra))
