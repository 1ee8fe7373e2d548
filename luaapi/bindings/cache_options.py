"""``pydist.cacheOptions(pc, {...})``, ``pydist.saveCache(pc [, file])`` and
``pydist.cacheStats()``: pydist's cache features (pydist/cache_ext.py, docs/cache.md)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from luaapi.bindings.caches import CacheHandle
from luaapi.bindings.pydist_ns import add
from luaapi.convert import as_float, as_int, as_str, is_table, table_to_dict, table_to_list
from luaapi.errors import LuaArgError
from pydist.cache_counters import COUNTERS
from pydist.stats import format_dump_stats

if TYPE_CHECKING:   # the features (asyncio, redis-py) load only for a config that uses them
    from pydist.cache_ext import CacheOptions, Prefetch

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _handle(pc: Any, func: str) -> CacheHandle:
    if not isinstance(pc, CacheHandle):
        raise LuaArgError(f"{func}: the first argument must be a packet cache (newPacketCache)")
    return pc


def _prefetch(value: Any) -> Prefetch | None:
    if value is False or value is None:
        return None
    if not is_table(value):
        raise LuaArgError("pydist.cacheOptions: prefetch must be a table "
                          "{minHits=N, remaining=PERCENT, qps=N}")
    t = table_to_dict(value)
    from pydist.cache_ext import Prefetch
    p = Prefetch(min_hits=as_int(t.get("minHits", 3)), remaining=as_int(t.get("remaining", 10)),
                 qps=as_float(t.get("qps", 100)))
    if p.min_hits < 1 or not 0 < p.remaining < 100 or p.qps < 0:
        raise LuaArgError("pydist.cacheOptions: prefetch wants minHits >= 1, "
                          "0 < remaining < 100 and qps >= 0")
    return p


def parse_options(opts: dict[Any, Any], log: Any) -> CacheOptions:
    """The option table as a CacheOptions; wrong values raise, unknown names are logged."""
    kw: dict[str, Any] = {}
    for name, value in opts.items():
        if name == "staleWindow":
            kw["stale_window"] = max(0, as_int(value))
        elif name == "staleTTL":
            kw["stale_ttl"] = max(0, as_int(value))
        elif name == "staleRcodes":
            kw["stale_rcodes"] = frozenset(as_int(v) for v in table_to_list(value))
        elif name == "prefetch":
            kw["prefetch"] = _prefetch(value)
        elif name == "snapshot":
            kw["snapshot"] = as_str(value)
        elif name == "redis":
            url = as_str(value)
            if url and not url.startswith(_REDIS_SCHEMES):
                raise LuaArgError(f"pydist.cacheOptions: redis wants a redis://, rediss:// or "
                                  f"unix:// URL, not '{url}'")
            kw["redis"] = url
        elif name == "redisTimeout":
            kw["redis_timeout"] = as_float(value)
            if kw["redis_timeout"] <= 0:
                raise LuaArgError("pydist.cacheOptions: redisTimeout must be positive")
        elif name == "redisNamespace":
            kw["redis_namespace"] = as_str(value)
        elif name == "refreshTimeout":
            kw["refresh_timeout"] = as_float(value)
        else:
            log(f"Warning: pydist.cacheOptions: unknown option '{name}' ignored")
    from pydist.cache_ext import CacheOptions
    return CacheOptions(**kw)


def register(rt: Any) -> None:
    reg = rt.registry

    def cache_options(pc: Any = None, opts: Any = None, *_: Any) -> None:
        handle = _handle(pc, "pydist.cacheOptions")
        if not is_table(opts):
            raise LuaArgError("pydist.cacheOptions: the second argument must be an option table")
        from pydist import cache_ext
        cache_ext.enable(handle.cache, parse_options(table_to_dict(opts), rt.log), reg.stats)
    add(rt, "cacheOptions", cache_options)

    def save_cache(pc: Any = None, path: Any = None, *_: Any) -> None:
        cache = _handle(pc, "pydist.saveCache").cache
        from pydist import cache_ext
        if not isinstance(cache, cache_ext.ExtendedPacketCache):
            raise LuaArgError("pydist.saveCache: this cache has no pydist.cacheOptions")
        target = as_str(path) if path is not None else cache.ext.options.snapshot
        if not target:
            rt.show("Error: no snapshot file given or configured\n")
            return
        saver = rt.registry.cache_saver         # with worker processes: they hold the entries
        if saver is not None:
            rt.show(saver(cache, as_str(path) if path is not None else None))
            return
        rt.show(cache_ext.saved_line(cache_ext.save(cache, target, rt.log), target))
    add(rt, "saveCache", save_cache)

    def cache_stats(*_: Any) -> None:
        stats = reg.stats
        rt.show(format_dump_stats([(n, stats.extra[n]()) for n in COUNTERS
                                   if n in stats.extra]))
    add(rt, "cacheStats", cache_stats)
