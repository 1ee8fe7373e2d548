"""The `pydist` Lua table: what pydist adds to dnsdist lives there and nowhere else, so one
config runs on both (`if pydist then pydist.setWorkers(2) end`; dnsdist has no such global).
Each domain's bindings put their functions in it through `add`."""
from __future__ import annotations

from typing import Any, Callable


def namespace(rt: Any) -> Any:
    """The table, made on first use."""
    table = rt.globals.pydist
    if table is None:
        table = rt.lua.table()
        rt.globals.pydist = table
    return table


def add(rt: Any, name: str, func: Callable[..., Any]) -> None:
    """`pydist.<name>`, with dnsdist-style errors as every binding has."""
    namespace(rt)[name] = rt.wrap(func)


def register(rt: Any) -> None:
    namespace(rt)
