"""Every object the bindings hand to Lua hides its Python state: each instance attribute of
the Python object behind it reads as nil from Lua, unless the class names it as a dnsdist field
(LUA_FIELDS). Complements tests/integration/test_lua_surface_diff.py, which compares fixed
probes with real dnsdist; this one finds the attribute names itself, so a new handle attribute
cannot leak unnoticed."""
from __future__ import annotations

import pytest

from luaapi.runtime import LuaConfig
from pydist.registry import CHECK, Registry

OBJECTS = ['newServer("127.0.0.1:9")', 'getPool("")', 'newPacketCache(10)', 'AllRule()',
           'DropAction()', 'newRuleAction(AllRule(), DropAction())', 'newDNSName("a.b.")',
           'newCA("192.0.2.1")', 'newNMG()', 'newNetmask("192.0.2.0/24")',
           'newSuffixMatchNode()', 'newDNSNameSet()', 'newQPSLimiter(10, 10)',
           'dynBlockRulesGroup()', 'newServerPolicy("q", function() return 0 end)',
           'newDOHResponseMapEntry("^/x$", 200, "x")']


@pytest.fixture(scope="module")
def cfg() -> LuaConfig:
    return LuaConfig(Registry(CHECK, log=lambda line: None))


@pytest.mark.parametrize("expr", OBJECTS)
def test_python_attributes_read_as_nil(cfg: LuaConfig, expr: str) -> None:
    obj = cfg.lua.execute(f"held = {expr}; return held")
    fields = getattr(type(obj), "LUA_FIELDS", ())
    names = [n for n in vars(obj) if n not in fields] + ["__class__", "__dict__", "__init__"]
    assert names, expr
    for name in names:
        assert cfg.lua.execute(f"return type(held[{name!r}])") == "nil", (expr, name)


def test_writes_reach_only_dnsdist_members(cfg: LuaConfig) -> None:
    cfg.lua.execute('s = newServer("127.0.0.1:9")')
    assert cfg.lua.execute("s.order = 7; return s.order") == 7
    ok, err = cfg.lua.execute("return pcall(function() s.rt = 1 end)")
    assert not ok and str(err) == "Unknown Lua error"


def test_python_module_unreachable(cfg: LuaConfig) -> None:
    assert cfg.lua.execute("return type(python), type(package.loaded.python)") == ("nil", "nil")
    ok, err = cfg.lua.execute('return pcall(require, "python")')
    assert not ok and str(err).startswith("module 'python' not found:")
