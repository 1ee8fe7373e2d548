"""A worker replaced by a reload (its listeners changed, or it could not apply the reload)
hands its packet-cache entries to the worker that replaces it: the supervisor asks the old
one for the entries of every pool whose cache the reload kept, and forks the new one holding
them; it stores them before it reads a query. So a reload with workers keeps the caches
warm as it does in one process (the client reaches the same worker slot: same sockets)."""
from __future__ import annotations

import time

from pydist import cache_snapshot
from pydist.registry import Registry

KIND = "cache-handover"
# pool name -> its cache's entries, in the snapshot file's format
Entries = dict[str, bytes]


def kept_pools(old: Registry, new: Registry) -> list[str]:
    """The pools whose cache the supervisor's reload kept (the running object itself)."""
    return [name for name, pool in new.pools.items()
            if pool.cache is not None and name in old.pools
            and old.pools[name].cache is pool.cache]


def export(reg: Registry, names: list[str]) -> Entries:
    """In the worker being replaced: each named pool's entries (a cache shared by pools
    once)."""
    out: Entries = {}
    seen: set[int] = set()
    now = time.time()
    for name in names:
        pool = reg.pools.get(name)
        if pool is None or pool.cache is None or id(pool.cache) in seen:
            continue
        seen.add(id(pool.cache))
        out[name] = cache_snapshot.dump(pool.cache, now)[0]
    return out


def adopt(reg: Registry, entries: Entries) -> int:
    """In the new worker, before serving: the entries stored; -> how many."""
    now = time.time()
    stored = 0
    for name, data in entries.items():
        pool = reg.pools.get(name)
        if pool is None or pool.cache is None:
            continue
        try:
            _, records = cache_snapshot.decode(data)
        except cache_snapshot.SnapshotError:
            continue
        stored += cache_snapshot.store_records(pool.cache, records, now, 0)[0]
    return stored
