"""The `pydist` Lua table: pydist's own settings, which dnsdist lacks. A config that uses them
does not run on dnsdist (where `pydist` is nil); a dnsdist config never sees them. Any binding
module may add functions to it through `namespace(rt)`."""
from __future__ import annotations

from typing import Any, Callable

from luaapi.convert import as_bool, as_int, fail, is_table, table_to_dict
from luaapi.errors import LuaArgError


def namespace(rt: Any) -> Any:
    """The `pydist` table, made on first use."""
    table = rt.globals["pydist"]
    if table is None:
        table = rt.globals["pydist"] = rt.lua.table()
    return table


def add(rt: Any, name: str, func: Callable[..., Any]) -> None:
    """`pydist.<name>`, with dnsdist-style errors as every binding has."""
    namespace(rt)[name] = rt.wrap(func)


def register(rt: Any) -> None:
    ns = namespace(rt)
    web = rt.registry.web

    def set_health_endpoints(options: Any = None, *a: Any) -> None:
        """pydist.setHealthEndpoints{public=true}: /healthz and /readyz without credentials
        (Kubernetes probes); by default they take the dashboard's basic auth or the API key."""
        if options is None:
            return
        if not is_table(options):
            raise fail(options, "table")
        opts = table_to_dict(options)
        if "public" in opts:
            web.health_public = as_bool(opts["public"])
    ns.setHealthEndpoints = rt.wrap(set_health_endpoints)

    def set_workers(n: Any = None, *a: Any) -> None:
        """pydist.setWorkers(N): N worker processes serve the listeners (pydist.workers);
        config only, as the addLocal calls it stands for."""
        from luaapi.bindings.misc import runtime_refused
        from pydist.workers import MAX_WORKERS
        if runtime_refused(rt, "pydist.setWorkers"):
            return
        count = as_int(n)
        if not 1 <= count <= MAX_WORKERS:
            raise LuaArgError(f"pydist.setWorkers: the number of workers must be between 1 "
                              f"and {MAX_WORKERS}, not {count}")
        rt.registry.settings.workers = count
    add(rt, "setWorkers", set_workers)
