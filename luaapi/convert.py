"""Converting Lua values for bindings, with dnsdist's conversion error texts."""
from __future__ import annotations

from typing import Any

import lupa.luajit21 as lupa

from luaapi import cppnames as C
from luaapi.errors import LuaArgError

CPP_NAMES = {
    "string": "std::string", "int": "int", "bool": "bool", "double": "double",
    "table": "std::vector<std::pair<std::string, boost::variant<bool, std::string> > >",
}


def lua_type(v: Any) -> str:
    """Lua's type() of a value that came from Lua."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, (str, bytes)):
        return "string"
    t = lupa.lua_type(v)
    return t or "userdata"


def is_table(v: Any) -> bool:
    return lupa.lua_type(v) == "table"


def is_function(v: Any) -> bool:
    return lupa.lua_type(v) == "function"


def fail(v: Any, target: str) -> LuaArgError:
    return LuaArgError(f"Unable to convert parameter from {lua_type(v)} to {target}")


def as_str(v: Any, target: str = C.STRING) -> str:
    """Strings, and numbers the way LuaWrapper turns them into strings."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or v is None:
        raise fail(v, target)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    raise fail(v, target)


def as_int(v: Any, target: str = C.INT) -> int:
    if isinstance(v, bool) or v is None:
        raise fail(v, target)
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        try:
            return int(float(v))
        except ValueError:
            raise fail(v, target) from None
    raise fail(v, target)


def as_float(v: Any, target: str = C.DOUBLE) -> float:
    if isinstance(v, bool) or v is None:
        raise fail(v, target)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise fail(v, target) from None
    raise fail(v, target)


def as_bool(v: Any, target: str = C.BOOL) -> bool:
    if isinstance(v, bool):
        return v
    raise fail(v, target)


def table_items(t: Any) -> list[tuple[Any, Any]]:
    return list(t.items()) if is_table(t) else []


def table_to_dict(t: Any) -> dict[Any, Any]:
    """A Lua table as a dict; nested tables stay Lua tables."""
    return dict(t.items()) if is_table(t) else {}


def table_to_list(t: Any) -> list[Any]:
    """The array part of a Lua table, in index order."""
    if not is_table(t):
        return []
    items = [(k, v) for k, v in t.items() if isinstance(k, int)]
    return [v for _, v in sorted(items)]


def str_or_list(v: Any, target: str) -> list[str]:
    """A string or a list of strings (pool=, setACL, ...)."""
    if is_table(v):
        return [as_str(x, target) for x in table_to_list(v)]
    return [as_str(v, target)]


def check_count(name: str, args: tuple, most: int) -> None:
    if len(args) > most:
        raise LuaArgError(f"This function requires at most {most} parameter(s)")
