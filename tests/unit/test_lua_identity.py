"""A Python object handed to Lua comes back as itself, whatever the Lua GC did in between
(lupa's weak reference table could hand out another object's wrapper: see
luaapi.runtime._PYREF_GUARD)."""
from __future__ import annotations

from luaapi.runtime import LuaConfig
from pydist.registry import CHECK, Registry


class Entity:
    def __init__(self, n: int) -> None:
        self.n = n


def test_objects_round_trip_through_lua_as_themselves() -> None:
    cfg = LuaConfig(Registry(CHECK, log=lambda line: None))
    echo = cfg.lua.eval("function(entity, event) return entity end")
    kept = [Entity(-1), Entity(-2), Entity(-3)]
    wrong = 0
    for i in range(60000):
        expected = kept[i % 3] if i % 2 else Entity(i)     # live ones and throwaway ones
        if echo(expected, cfg.lua.table(name="update")) is not expected:
            wrong += 1
        if i % 5000 == 0:
            cfg.sweep_python_refs()                         # as the engine's tick does
    assert wrong == 0


def test_sweep_skipped_while_the_lua_heap_is_unchanged() -> None:
    """No full collection (which marks, and so writes, every Lua object: in a worker process
    every page shared with the supervisor) when nothing changed since the last sweep."""
    cfg = LuaConfig(Registry(CHECK, log=lambda line: None))
    cfg.sweep_python_refs()
    assert cfg.sweep_python_refs() is False
    cfg.lua.execute("garbage = {} for i = 1, 100 do garbage[i] = {i} end garbage = nil")
    assert cfg.sweep_python_refs() is True
    assert cfg.sweep_python_refs() is False
