"""The embedded Lua (LuaJIT through lupa) that evaluates dnsdist.conf against the Registry."""
from __future__ import annotations

import importlib
import inspect
import os
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
    "luaapi.bindings.cache_options",
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
    "luaapi.bindings.reload",
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


# What Lua sees of a Python object: dnsdist's surface and nothing else. Only the handle
# classes of luaapi (written with dnsdist's method and field names) show anything: their
# methods, their properties, and the plain instance fields named in their LUA_FIELDS; a name
# with "_" is Python's (console_str: the console's hook), dnsdist's are camelCase. Any
# other name, and every member of any other object, reads as nil, as a member LuaWrapper's
# userdata lack does in dnsdist (`getServer(0).rt` is nil, `.rt.registry` "attempt to index
# field 'rt' (a nil value)"); so no walk reaches the registry, the engine or Python itself.
_NIL, _METHOD, _VALUE = 0, 1, 2
_CONSTANT_TYPES = (int, float, str, bool)


def lua_member(cls: type, name: Any) -> tuple[int, Any]:
    """(kind, function) for cls.name as Lua may see it: _METHOD with the function,
    _VALUE (read or written on the object each time) or _NIL."""
    if not isinstance(name, str) or not cls.__module__.startswith("luaapi."):
        return _NIL, None
    if name in getattr(cls, "LUA_FIELDS", ()):
        return _VALUE, None
    if "_" in name:
        return _NIL, None
    for klass in cls.__mro__[:-1]:        # object's members are Python's, never dnsdist's
        if name not in klass.__dict__:
            continue
        member = klass.__dict__[name]     # None: a subclass hides its parent's method
        if inspect.isfunction(member):
            return _METHOD, member
        if isinstance(member, (property, *_CONSTANT_TYPES)):
            return _VALUE, None
        return _NIL, None                 # slots, descriptors, nested classes
    return _NIL, None


def _method_getter(wrap: Callable) -> Callable[[Any, Any], Any]:
    """Lua's `obj.name`: a method comes back as a Lua function (one per class and name, made
    once) whose errors carry the caller's line, as dnsdist's `obj:method()` errors do
    (`[string "chunk"]:3: Unable to convert parameter ...`); a field is read; the rest is nil.
    One dict lookup per access once a (class, name) pair has been seen: dq fields are read
    per query."""
    cache: dict[tuple[type, Any], tuple[int, Any]] = {}

    def get(obj: Any, name: Any) -> Any:
        key = (type(obj), name)
        entry = cache.get(key)
        if entry is None:
            kind, func = lua_member(type(obj), name)
            if len(cache) > 4096:         # names built at run time (`o["x" .. i]`)
                cache.clear()
            entry = cache[key] = (kind, wrap(func) if kind == _METHOD else None)
        kind, fn = entry
        if kind == _METHOD:
            return fn
        return getattr(obj, name, None) if kind == _VALUE else None
    return get


class LuaWriteError(Exception):
    """A write to a member the object does not have; dnsdist's LuaWrapper fails it with a
    non-standard exception, shown as 'Unknown Lua error'."""

    def __str__(self) -> str:
        return "Unknown Lua error"


def _set_attribute(obj: Any, name: Any, value: Any) -> None:
    """Lua's `obj.name = v`: only fields dnsdist lets Lua write (properties with a setter,
    LUA_FIELDS)."""
    kind, _ = lua_member(type(obj), name)
    if kind != _VALUE:
        raise LuaWriteError()
    member = inspect.getattr_static(obj, name, None)
    if isinstance(member, property) and member.fset is None:
        raise LuaWriteError()
    setattr(obj, name, value)


def read_package_text(name: str) -> str:
    """A Lua file shipped beside this module (importlib.resources costs 5 ms of start-up)."""
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as f:
        return f.read()


class ConfigError(Exception):
    """The config failed: lines to print (stdout) and the exit status dnsdist uses (1)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


# lupa (2.6-2.8 seen) keeps the Lua side of Python objects in a weak-valued registry table;
# when the incremental GC clears entries there, a later push can hand Lua the wrapper of
# another live object (getPool("") came back as an ActionHandle; lupa issue #294 describes
# the same). The table is kept strong and swept in one atomic full collection, once a second
# (engine tick) and after the config ran: no entry is ever cleared half-way. A sweep is
# skipped while the Lua heap has not changed since the previous one (nothing allocated, so
# nothing new to sweep, or only a delay until the next allocation): a full collection marks
# every Lua object, which in a worker process writes, and so copies, every page of the heap
# it shares with the supervisor (pydist.workers), and costs a whole mark of a large config's
# tables each second in every process. It returns whether it collected.
_PYREF_GUARD = """
local t = debug.getregistry().LUPA_PYTHON_REFERENCES_TABLE
local weak, setmetatable, collect = {__mode = 'v'}, setmetatable, collectgarbage
local swept = -1
if t then setmetatable(t, nil) end
return function()
  if not t or collect('count') == swept then return false end
  setmetatable(t, weak); collect('collect'); setmetatable(t, nil)
  swept = collect('count')
  return true
end
"""


# Where `require` looks in dnsdist 1.7.3 as distributions ship it (linked to the system's
# LuaJIT 2.1.0-beta3): modules installed for the system's Lua 5.1 are found, as they are by
# dnsdist, and a missing module fails with the same list of places.
_LUA_PATH = ("./?.lua;/usr/share/luajit-2.1.0-beta3/?.lua;/usr/local/share/lua/5.1/?.lua;"
             "/usr/local/share/lua/5.1/?/init.lua;/usr/share/lua/5.1/?.lua;"
             "/usr/share/lua/5.1/?/init.lua")
_LUA_CPATH = ("./?.so;/usr/local/lib/lua/5.1/?.so;/usr/lib/{multiarch}/lua/5.1/?.so;"
              "/usr/local/lib/lua/5.1/loadall.so")


def set_search_paths(lua: Any) -> None:
    """package.path and package.cpath as dnsdist's, unless LUA_PATH / LUA_CPATH set them."""
    package = lua.globals().package
    if "LUA_PATH" not in os.environ:
        package.path = _LUA_PATH
    if "LUA_CPATH" not in os.environ:
        multiarch = f"{os.uname().machine}-linux-gnu"
        package.cpath = _LUA_CPATH.format(multiarch=multiarch)


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
        # lupa's `python` module: neither a global nor a module `require` finds, as in dnsdist
        self.lua.execute("python = nil; package.loaded.python = nil")
        set_search_paths(self.lua)
        g["__pydist_classify"] = errors.classify
        self.sweep_python_refs = self.lua.execute(_PYREF_GUARD)
        prelude = read_package_text("prelude.lua")
        self.lua.execute(prelude, name=PRELUDE_CHUNK)
        self._wrap = g["__pydist_wrap"]
        wrap.append(self._wrap)
        self._run = g["__pydist_run"]
        for plumbing in ("__pydist_classify", "__pydist_wrap", "__pydist_run"):
            g[plumbing] = None        # held from Python now; dnsdist has no such globals
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


# The prelude's chunk name: its frames are the binding wrappers, C functions in dnsdist.
PRELUDE_CHUNK = "<pydist>"
_PY_FRAME = re.compile(r'^\t\[string "<(?:python|pydist)>"\]:\d+: in function (\'[^\']+\')$')
# A binding reached by a tail call (`return getServer(9)`) has no name in Lua's traceback;
# dnsdist's C function then shows as its address.
_WRAPPER_FRAME = re.compile(r'^\t\[string "<pydist>"\]:\d+: in function (\'[^\']+\'|<.+>)$')
_C_ADDRESS = f"\t[C]: at 0x{id(re) & 0xFFFFFFFFFFFF:012x}"
_HIDDEN = ("\t[C]: in function 'xpcall'", "\t[C]: in function 'error'",
           "\t[C]: in function 'pcall'")


def clean_traceback(text: str) -> str:
    """Our wrappers are C functions in dnsdist: show them as [C] frames, hide the plumbing."""
    lines = []
    for line in str(text).split("\n"):
        m = _PY_FRAME.match(line)
        if m:
            lines.append(f"\t[C]: in function {m.group(1)}")
        elif '[string "<python>"]' in line or '[string "<pydist>"]' in line or line in _HIDDEN:
            continue
        else:
            lines.append(line)
    return "\n".join(lines)


def clean_wrapper_frames(text: str) -> str:
    """A console traceback with the binding wrappers shown as dnsdist's C functions: named
    (`[C]: in function 'getServer'`) or, reached by a tail call, by address. Frames of
    functions the user defined are kept as they are."""
    head, sep, frames = text.partition("\nstack traceback:\n")
    if not sep:
        return text
    lines = frames.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        if line == "\t[C]: in function 'error'" and i + 1 < len(lines) \
                and _WRAPPER_FRAME.match(lines[i + 1]):
            continue
        m = _WRAPPER_FRAME.match(line)
        if m:
            named = m.group(1).startswith("'")
            out.append(f"\t[C]: in function {m.group(1)}" if named else _C_ADDRESS)
        elif '[string "<pydist>"]' not in line:
            out.append(line)
    return head + sep + "\n".join(out)


def print_lines(lines: list[str]) -> None:
    out = sys.stdout.buffer
    for line in lines:
        out.write(line.encode("latin-1", "replace") + b"\n")
    out.flush()
