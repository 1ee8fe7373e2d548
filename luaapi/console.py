"""Running one console line in the config's Lua state, as dnsdist 1.7.3 does.

Rules (``controlClientThread`` and ``doConsole`` in ``pdns/dnsdist-console.cc``):

1. Load ``"return " + line`` (chunk name = that code); on a syntax error load
   ``line`` as-is. Run it under ``xpcall`` with a traceback handler.
2. Only the first returned value counts: nil or nothing -> the output buffer
   (what show()/showServers() appended); string or number -> its text; an
   object with ``console_str()`` (server, frontend) -> that text; a table of
   string -> number -> json11's ``{"a": 1}``; anything else -> "we can't print".
3. A line that ran without error is journalled for ``delta()`` unless a
   function marked it as having no side effect (and none marked a side effect).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

# The C++ type dnsdist tries to read a console result into, as its error names it.
_RESULT_TYPE = (
    "N5boost8optionalINS_7variantINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEJSt10"
    "shared_ptrI15DownstreamStateEP11ClientStateSt13unordered_mapIS7_dSt4hashIS7_ESt8equal_"
    "toIS7_ESaISt4pairIKS7_dEEEEEEEE"
)
CANT_PRINT = "Command returned an object we can't print: "
NEXT_ERROR = "invalid key to 'next'"
_XPCALL_FRAME = "\n\t[C]: in function 'xpcall'"

# Lua side: load, run, and classify the first result without leaving Lua for
# each value. Library functions are captured once so a console user redefining
# globals cannot break the console itself.
_RUNNER = """
local loadstring, xpcall, traceback = loadstring, xpcall, debug.traceback
local type, tostring, tonumber, next, select = type, tostring, tonumber, next, select

local function handler(e)
  if type(e) ~= "string" then e = tostring(e) end
  return traceback(e, 1)
end

local function as_map(t)
  local keys, values = {}, {}
  for k, v in next, t do
    local kt = type(k)
    if kt ~= "string" and kt ~= "number" then return nil end
    local n = tonumber(v)
    if n == nil then return nil end
    keys[#keys + 1] = tostring(k)
    values[#values + 1] = n
  end
  return keys, values
end

local function classify(ok, ...)
  if not ok then return "error", (...) end
  if select("#", ...) == 0 then return "none" end
  local v = ...
  local t = type(v)
  if t == "nil" then return "none" end
  if t == "string" or t == "number" then return "value", tostring(v) end
  if t == "table" then
    local keys, values = as_map(v)
    if keys then return "map", keys, values end
  end
  if t == "userdata" then return "object", v end
  return "wrongtype", t
end

return function(line)
  local code = "return " .. line
  local f, err = loadstring(code, code)
  if not f then
    code = line
    f, err = loadstring(code, code)
    if not f then return "syntax", err end
  end
  return classify(xpcall(f, handler))
end
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one line produced, before the remote or local console renders it."""

    kind: str  # "value", "buffer", "wrongtype", "error", "syntax"
    text: str


def json11_number(value: float) -> str:
    """json11's number: ``%.17g``, and ``null`` when not finite."""
    if not math.isfinite(value):
        return "null"
    return "%.17g" % value


def json11_string(text: str) -> str:
    """json11's string escaping."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code <= 0x1F:
            out.append("\\u%04x" % code)
        elif code in (0x2028, 0x2029):
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def render_map(items: dict[str, float]) -> str:
    """A string -> number table as json11 dumps a std::map (keys in byte order)."""
    parts = [
        json11_string(k) + ": " + json11_number(items[k])
        for k in sorted(items, key=lambda s: s.encode("utf-8", "surrogateescape"))
    ]
    return "{" + ", ".join(parts) + "}"


def render_delta(entries: list[tuple[float, str]]) -> str:
    """delta()'s text: a ``-- <localtime>`` line then the command, per journalled line."""
    out = []
    for when, line in entries:
        stamp = time.strftime("%a %b %d %Y %H:%M:%S %Z", time.localtime(when))
        out.append(f"-- {stamp}\n{line}\n")
    return "".join(out)


class Executor:
    """Runs console lines in one LuaRuntime; ``executor(line)`` is the remote reply text."""

    def __init__(self, lua: Any, output: list[str]) -> None:
        self._run = lua.execute(_RUNNER)
        self.output = output
        self.delta_lines: list[tuple[float, str]] = []
        self._no_side_effect = False
        self._side_effect = False

    # -- called by bindings ----------------------------------------------------

    def mark_no_side_effect(self) -> None:
        """A read-only function ran (show*, get*, dumpStats...): do not journal this line."""
        self._no_side_effect = True

    def mark_side_effect(self) -> None:
        """A function changed the configuration: journal the line whatever else ran."""
        self._side_effect = True

    def render_delta(self) -> str:
        """What delta() shows."""
        return render_delta(self.delta_lines)

    # -- running ---------------------------------------------------------------

    def run(self, line: str) -> Outcome:
        """Execute one line and classify the result (never raises for Lua errors)."""
        self.output.clear()
        self._no_side_effect = False
        self._side_effect = False
        result = self._run(line)
        if not isinstance(result, tuple):
            result = (result,)
        kind = result[0]
        if kind == "syntax":
            return Outcome("syntax", str(result[1]))
        if kind == "error":
            return Outcome("error", _strip_runner_frame(str(result[1])))
        if kind == "wrongtype":
            return Outcome("wrongtype", _cast_error(str(result[1])))
        if kind == "none":
            outcome = Outcome("buffer", "".join(self.output))
        elif kind == "value":
            outcome = Outcome("value", str(result[1]))
        elif kind == "map":
            keys = list(result[1].values())
            values = list(result[2].values())
            outcome = Outcome("value", render_map(dict(zip(keys, values, strict=True))))
        else:  # "object": a Python object handed to Lua
            console_str = getattr(result[1], "console_str", None)
            if not callable(console_str):
                return Outcome("wrongtype", _cast_error("userdata"))
            outcome = Outcome("value", str(console_str()))
        self._journal(line)
        return outcome

    def __call__(self, line: str) -> str:
        return render_remote(self.run(line))

    def _journal(self, line: str) -> None:
        if line and (self._side_effect or not self._no_side_effect):
            self.delta_lines.append((time.time(), line))


def _cast_error(lua_type: str) -> str:
    return f'Trying to cast a lua variable from "{lua_type}" to "{_RESULT_TYPE}"'


def _strip_runner_frame(message: str) -> str:
    """Drop the xpcall and runner frames at the bottom: dnsdist calls the chunk from C."""
    cut = message.rfind(_XPCALL_FRAME)
    return _binding_frames(message[:cut] if cut >= 0 else message)


def _wrapper_lines() -> tuple[int, int]:
    """(line of __pydist_wrap's inner function, line of its `error(msg, 2)`) in prelude.lua."""
    import importlib.resources
    text = importlib.resources.files("luaapi").joinpath("prelude.lua").read_text()
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("function __pydist_wrap"))
    raise_at = next(i for i in range(start, len(lines)) if "error(msg, 2)" in lines[i])
    return start + 2, raise_at + 1


_FN_LINE, _RAISE_LINE = _wrapper_lines()
_RAISED = f'\t[C]: in function \'error\'\n\t[string "<python>"]:{_RAISE_LINE}: in function '
# dnsdist names the C function a binding is (LuaWrapper); a tail call (`return f()`, the
# console's first try) shows only its address, which varies from run to run anyway
C_FUNCTION_AT = "\t[C]: at 0x55555555a000"


def _binding_frames(message: str) -> str:
    """A binding's error raised from the Lua wrapper of a Python function: show the frame as
    dnsdist's C function frame, named when Lua knows the name."""
    anonymous = _RAISED + f'<[string "<python>"]:{_FN_LINE}>'
    message = message.replace(anonymous, C_FUNCTION_AT)
    return message.replace(_RAISED, "\t[C]: in function ")


def render_remote(outcome: Outcome) -> str:
    """The reply the console server sends for an outcome (controlClientThread)."""
    if outcome.kind == "value":
        return outcome.text + "\n"
    if outcome.kind == "buffer":
        return outcome.text
    if outcome.kind == "wrongtype":
        return CANT_PRINT + outcome.text + "\n"
    if outcome.kind == "syntax":
        return "Error: " + outcome.text + ": "
    if outcome.text == NEXT_ERROR:
        return "Error: Parsing function parameters, did you forget parameter name?"
    return "Error: " + outcome.text


def make_executor(lua: Any, output: list[str]) -> Executor:
    """An executor over ``lua`` whose show*() functions append to ``output``."""
    return Executor(lua, output)


def run_local_console(
    executor: Callable[[str], str] | Executor,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> None:
    """dnsdist's console on stdin (no --supervised): results to stdout, errors to stderr.

    Returns at EOF (the caller then exits 0, as dnsdist does) or on ``quit``.
    """
    interactive = stdin.isatty()
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        raw = stdin.readline()
        if not raw:
            return
        line = raw.rstrip("\n")
        if line == "quit":
            return
        if line in ("help", "?"):
            line = "help()"
        if not isinstance(executor, Executor):
            stdout.write(executor(line))
            stdout.flush()
            continue
        outcome = executor.run(line)
        if outcome.kind == "value":
            stdout.write(outcome.text + "\n")
        elif outcome.kind == "buffer":
            stdout.write(outcome.text)
        elif outcome.kind == "wrongtype":
            stderr.write(CANT_PRINT + outcome.text + "\n")
        elif outcome.kind == "error" and outcome.text == NEXT_ERROR:
            stderr.write("Error parsing parameters, did you forget parameter name?\n")
        else:
            stderr.write(outcome.text + "\n")
        stdout.flush()
        stderr.flush()
