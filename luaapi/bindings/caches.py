"""newPacketCache and the cache object's methods (dnsdist-lua-bindings-packetcache.cc)."""
from __future__ import annotations

from typing import Any

from luaapi.convert import as_bool, as_int, as_str, fail, is_table, table_to_dict, table_to_list
from luaapi.errors import LuaArgError
from pydist.cache import PacketCache

# option name -> (constructor keyword, converter)
OPTIONS = {
    "maxTTL": ("max_ttl", as_int), "minTTL": ("min_ttl", as_int),
    "temporaryFailureTTL": ("temporary_failure_ttl", as_int),
    "maxNegativeTTL": ("max_negative_ttl", as_int), "staleTTL": ("stale_ttl", as_int),
    "dontAge": ("dont_age", as_bool), "numberOfShards": ("number_of_shards", as_int),
    "deferrableInsertLock": ("deferrable_insert_lock", as_bool),
    "parseECS": ("parse_ecs", as_bool), "keepStaleData": ("keep_stale_data", as_bool),
    "cookieHashing": ("cookie_hashing", as_bool),
}
# dnsdist < 1.4 positional form: newPacketCache(max, maxTTL, minTTL, tempFailTTL, staleTTL, dontAge)
POSITIONAL = ("max_ttl", "min_ttl", "temporary_failure_ttl", "stale_ttl", "dont_age")


class CacheHandle:
    """Lua's view of a PacketCache."""

    def __init__(self, cache: PacketCache) -> None:
        self.cache = cache

    @classmethod
    def wrap(cls, cache: PacketCache | None) -> "CacheHandle | None":
        if cache is None:
            return None
        h = getattr(cache, "lua_handle", None)
        if h is None:
            h = cache.lua_handle = cls(cache)
        return h

    def toString(self, *a: Any) -> str:
        return self.cache.to_string()

    tostring = toString

    def console_str(self) -> str:
        return self.cache.to_string()

    def isFull(self, *a: Any) -> bool:
        return self.cache.is_full()

    def purgeExpired(self, n: Any = 0, *a: Any) -> int:
        import time
        return self.cache.purge_expired(as_int(n), time.time())

    def expunge(self, n: Any = 0, *a: Any) -> int:
        return self.cache.expunge(as_int(n))

    def expungeByName(self, name: Any, qtype: Any = 255, suffix: Any = False, *a: Any) -> None:
        n = self.cache.expunge_by_name(str(name), as_int(qtype), as_bool(suffix))
        _show(f"Expunged {n} records\n")

    def printStats(self, *a: Any) -> None:
        _show(self.cache.print_stats())

    def getStats(self, *a: Any) -> Any:
        return _rt.lua.table_from(self.cache.get_stats())

    def dump(self, path: Any, *a: Any) -> None:
        import os
        import time
        name = as_str(path)
        if os.path.exists(name):
            _show("Error opening dump file for writing: File exists\n")
            return
        n = self.cache.dump(name, time.time())
        _show(f"Dumped {n} records\n")


_rt: Any = None


def _show(text: str) -> None:
    _rt.show(text)


def register(rt: Any) -> None:
    global _rt
    _rt = rt

    def new_packet_cache(max_entries: Any = None, opts: Any = None, *positional: Any) -> CacheHandle:
        if positional:   # the pre-1.4 positional form: LuaWrapper counts arguments first
            raise LuaArgError("This function requires at most 2 parameter(s)")
        if max_entries is None:
            raise LuaArgError("Unable to convert parameter from nil to unsigned long")
        kwargs: dict[str, Any] = {}
        if is_table(opts):
            for k, v in table_to_dict(opts).items():
                if k == "skipOptions":
                    kwargs["skip_options"] = tuple(as_int(x) for x in table_to_list(v))
                elif k in OPTIONS:
                    kw, conv = OPTIONS[k]
                    kwargs[kw] = conv(v)
        elif opts is not None:
            if isinstance(opts, (bool, str)) or not isinstance(opts, (int, float)):
                raise fail(opts, "boost::optional<std::unordered_map<std::string, boost::variant<bool, unsigned long, std::vector<std::pair<int, unsigned short> > > > >")
            raise LuaArgError("Unable to convert parameter from number to boost::optional<std::unordered_map<std::string, boost::variant<bool, unsigned long, std::vector<std::pair<int, unsigned short> > > > >")
        n = as_int(max_entries, "unsigned long")
        cache = PacketCache(n if rt.registry.mode != "client" else 1, **kwargs)
        if rt.registry.mode != "client":
            for w in getattr(cache, "warnings", ()):
                rt.log(w)
        return CacheHandle.wrap(cache)
    rt.fn("newPacketCache", new_packet_cache)
    _ = as_str
