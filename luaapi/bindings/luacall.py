"""Calling user Lua from the packet path with dnsdist's outcome when it fails: a warning with
the Lua traceback, and a fallback verdict (LuaAction and LuaResponseAction answer ServFail)."""
from __future__ import annotations

from typing import Any, Callable

_PCALL_LUA = """
local xpcall, traceback, tostring = xpcall, debug.traceback, tostring
local unpack, select = unpack, select
return function(f, arg)
  local r = {xpcall(function() return f(arg) end,
                    function(e) return traceback(tostring(e), 1) end)}
  return unpack(r, 1, table.maxn(r))
end
"""


def lua_pcall(rt: Any) -> Any:
    """One Lua helper per runtime: (true, results...) or (false, message with traceback)."""
    helper = getattr(rt, "_verdict_pcall", None)
    if helper is None:
        helper = rt.lua.execute(_PCALL_LUA)
        rt._verdict_pcall = helper
    return helper


def error_text(tb: Any) -> str:
    """The traceback as dnsdist prints it: everything from our xpcall plumbing on is cut."""
    lines = []
    for line in str(tb).split("\n"):
        if line == "\t[C]: in function 'xpcall'":
            break
        lines.append(line)
    return "\n".join(lines)


def lua_verdict_caller(rt: Any, f: Any, label: str, to_lua: Callable[[Any, Any], Any],
                       on_error: int, on_bad: int) -> Callable[[Any], tuple[int, str | None]]:
    """A Python callable running f(dq) -> (verdict[, text]); errors warn and give on_error."""
    pcall = lua_pcall(rt)

    def call(dq: Any) -> tuple[int, str | None]:
        res = pcall(f, to_lua(rt, dq))
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
    return call
