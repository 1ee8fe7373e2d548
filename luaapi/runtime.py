"""The embedded Lua (LuaJIT through lupa) that evaluates dnsdist.conf against the Registry."""
from __future__ import annotations

import importlib
import importlib.resources
import inspect
import re
import sys
from typing import Any, Callable

import lupa.luajit21 as lupa

from luaapi import errors
from pydist.registry import Registry

# One ordered list of binding modules, as dnsdist's setupLua() calls its setup functions.
BINDING_MODULES = (
    "luaapi.bindings.misc",
    "luaapi.bindings.frontends",
    "luaapi.bindings.servers",
    "luaapi.bindings.pools",
    "luaapi.bindings.ffi_policy",
    "luaapi.bindings.caches",
    "luaapi.bindings.consolecfg",
    "luaapi.bindings.web",
    "luaapi.bindings.inspection",
    "luaapi.bindings.objects",
    "luaapi.bindings.rules",
    "luaapi.bindings.response_rules",
    "luaapi.bindings.ffi_rules",
    "luaapi.bindings.compat",
    "luaapi.bindings.ipsets",
    "luaapi.bindings.kvstores",
    "luaapi.bindings.carbon",
    "luaapi.bindings.remotelog",
    "luaapi.bindings.proxyprotocol",
    "luaapi.bindings.querycount",
    "luaapi.bindings.tls",
    "luaapi.bindings.doh",
    "luaapi.bindings.dnscrypt",
    "luaapi.bindings.tcpstats",
    "luaapi.bindings.dynblocks",
    "luaapi.bindings.deprecated",
    "luaapi.bindings.pydist_ns",
    "luaapi.bindings.logcfg",
    "luaapi.bindings.testbench",
)


def _required_args(func: Callable) -> int:
    """How many leading parameters a binding cannot do without (0 when unknown)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 0
    return sum(1 for p in params if p.default is p.empty
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _get_attribute(obj: Any, name: Any) -> Any:
    """No door from Lua into Python internals (private names refused); a member the object
    lacks is nil, as LuaWrapper's userdata give, so `dq:nosuch()` fails as in dnsdist."""
    if not isinstance(name, str) or name.startswith("_"):
        raise AttributeError(f"access to '{name}' is not allowed")
    return getattr(obj, name, None)


def _method_getter(wrap: Callable) -> Callable[[Any, Any], Any]:
    """_get_attribute, but a method comes back as a Lua function (one per class and name,
    made once) whose errors carry the caller's line, as dnsdist's `obj:method()` errors do:
    `[string "chunk"]:3: Unable to convert parameter ...`."""
    cache: dict[tuple[type, str], Any] = {}

    def get(obj: Any, name: Any) -> Any:
        value = _get_attribute(obj, name)
        if not inspect.ismethod(value) or value.__self__ is not obj:
            return value
        key = (type(obj), name)
        fn = cache.get(key)
        if fn is None:
            fn = cache[key] = wrap(value.__func__)
        return fn
    return get


def _set_attribute(obj: Any, name: Any, value: Any) -> None:
    if not isinstance(name, str) or name.startswith("_"):
        raise AttributeError(f"access to '{name}' is not allowed")
    setattr(obj, name, value)


class ConfigError(Exception):
    """The config failed: lines to print (stdout) and the exit status dnsdist uses (1)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


# lupa (2.6-2.8 seen) keeps the Lua side of Python objects in a weak-valued registry table;
# when the incremental GC clears entries there, a later push can hand Lua the wrapper of
# another live object (getPool("") came back as an ActionHandle; lupa issue #294 describes
# the same). The table is kept strong and swept in one atomic full collection, once a second
# (engine tick) and after the config ran: no entry is ever cleared half-way.
_PYREF_GUARD = """
local t = debug.getregistry().LUPA_PYTHON_REFERENCES_TABLE
local weak, setmetatable, collect = {__mode = 'v'}, setmetatable, collectgarbage
if t then setmetatable(t, nil) end
return function()
  if t then setmetatable(t, weak); collect('collect'); setmetatable(t, nil) end
end
"""


class LuaConfig:
    """One Lua state: bindings registered, config run, console lines executed later in it."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.output: list[str] = []
        self.executor: Any = None     # the console executor, once serving
        wrap: list[Callable] = []
        self.lua = lupa.LuaRuntime(register_eval=False, register_builtins=False,
                                   unpack_returned_tuples=True, encoding="latin-1",
                                   attribute_handlers=(_method_getter(lambda f: wrap[0](f)),
                                                       _set_attribute))
        g = self.lua.globals()
        g.python = None
        g["__pydist_classify"] = errors.classify
        self.sweep_python_refs = self.lua.execute(_PYREF_GUARD)
        prelude = importlib.resources.files("luaapi").joinpath("prelude.lua").read_text()
        self.lua.execute(prelude)
        self._wrap = g["__pydist_wrap"]
        wrap.append(self._wrap)
        self._run = g["__pydist_run"]
        self.globals = g
        for modname in BINDING_MODULES:
            importlib.import_module(modname).register(self)

    # --- registering
    def fn(self, name: str, func: Callable, no_side_effect: bool = False) -> None:
        """Install a Python function as the Lua global `name`."""
        required = _required_args(func)
        if required or no_side_effect:
            inner, mark = func, no_side_effect

            def func(*args: Any) -> Any:   # one layer for both: bindings run per query too
                if mark and self.executor is not None:
                    self.executor.mark_no_side_effect()
                if len(args) < required:   # LuaWrapper's check, before the function runs
                    raise errors.LuaArgError(
                        f"This function requires at least {required} parameter(s)")
                return inner(*args)
        self.globals[name] = self._wrap(func)

    def wrap(self, func: Callable) -> Any:
        """A Lua function calling func, with dnsdist-style errors (for object methods)."""
        return self._wrap(func)

    def table(self, **items: Any) -> Any:
        return self.lua.table_from(items)

    def show(self, text: str) -> None:
        """Append to the console output buffer (what showX() prints)."""
        self.output.append(text)

    def log(self, line: str) -> None:
        self.registry.log(line)

    # --- running
    def run_file(self, path: str) -> None:
        """Run the config file; raise ConfigError with dnsdist's messages on failure."""
        try:
            with open(path, "rb") as f:
                code = f.read().decode("latin-1")
        except OSError:
            self.log(f"Unable to read configuration from '{path}'")
            return
        self.run_code(code, "chunk")

    def run_code(self, code: str, name: str) -> None:
        res = self._run(code, name)
        status = res[0] if isinstance(res, tuple) else res
        if status == "ok":
            return
        if status == "syntax":
            raise ConfigError([f"Fatal error: {res[1]}"])
        if status == "pdns":
            raise ConfigError([f"Fatal Lua error: {clean_traceback(res[2])}",
                               f"Fatal pdns error: {res[1]}"])
        raise ConfigError([f"Fatal Lua error: {clean_traceback(res[1])}"])


_PY_FRAME = re.compile(r'^\t\[string "<python>"\]:\d+: in function (\'[^\']+\')$')
_HIDDEN = ("\t[C]: in function 'xpcall'", "\t[C]: in function 'error'",
           "\t[C]: in function 'pcall'")


def clean_traceback(text: str) -> str:
    """Our wrappers are C functions in dnsdist: show them as [C] frames, hide the plumbing."""
    lines = []
    for line in str(text).split("\n"):
        m = _PY_FRAME.match(line)
        if m:
            lines.append(f"\t[C]: in function {m.group(1)}")
        elif '[string "<python>"]' in line or line in _HIDDEN:
            continue
        else:
            lines.append(line)
    return "\n".join(lines)


def print_lines(lines: list[str]) -> None:
    out = sys.stdout.buffer
    for line in lines:
        out.write(line.encode("latin-1", "replace") + b"\n")
    out.flush()
