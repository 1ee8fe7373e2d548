"""The ``pydist`` Lua table: pydist's own functions, absent from dnsdist, so a config can say
``if pydist then ... end`` and still run unchanged on dnsdist. Created here, once, before the
bindings that add to it (each adds its functions with ``pydist_fn``)."""
from __future__ import annotations

from typing import Any, Callable


def pydist_fn(rt: Any, name: str, func: Callable[..., Any]) -> None:
    """Install ``func`` as ``pydist.<name>``, with dnsdist-style errors like every binding."""
    rt.globals["pydist"][name] = rt.wrap(func)


def register(rt: Any) -> None:
    rt.globals["pydist"] = rt.lua.table()
