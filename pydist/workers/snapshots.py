"""Cache snapshots (`pydist.cacheOptions{snapshot=...}`, `pydist.saveCache`) with worker
processes. Each worker holds its own packet cache:

- the configured snapshot is one file per worker, the configured path plus `.w<i>` (worker
  i), saved at shutdown and by `pydist.saveCache(pc)`. The kernel sends a client (same source
  address and port) to the same worker after a restart with the same number of workers, so
  what that worker had cached is where its clients look for it; one file merged by the
  supervisor would hand every worker every entry, whose memory each would then hold;
- a worker without a file of its own (the first start with workers, or more workers than
  before) loads the configured path itself when it exists: what one process saved, or a
  merged file (below);
- `pydist.saveCache(pc, "file")`, a file named on the console, is one file with every
  worker's entries (an entry two workers hold, the latest): a user naming a file expects the
  cache, whole, in it, loadable by one process and by workers alike. The supervisor gathers
  the workers' entries and writes it; a worker replaying the console line writes nothing.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

from pydist import cache_ext, cache_snapshot
from pydist.registry import Registry
from pydist.workers.stats_sum import caches_of

if TYPE_CHECKING:
    from pydist.workers.supervisor import Supervisor

KIND = "cache-save"


def worker_path(path: str, slot: int) -> str:
    return f"{path}.w{slot}"


def use_worker_files(reg: Registry, slot: int) -> None:
    """In worker `slot`, before serving: every snapshot file becomes that worker's own; with
    no file of its own yet, the configured one (one process's, or a merged one) is loaded."""
    for cache, _pools in cache_ext.configured_caches(reg):
        opts = cache.ext.options
        if opts.snapshot:
            path = worker_path(opts.snapshot, slot)
            if not os.path.exists(path):
                cache_snapshot.load(cache, opts.snapshot, time.time(), opts.stale_window,
                                    cache.ext.counters, reg.log)
            cache.ext.options = dataclasses.replace(opts, snapshot=path)


def ignore_replayed_saves(reg: Registry) -> None:
    """In a worker: `pydist.saveCache` on a replayed console line writes nothing (the
    supervisor asked for the save with a message of its own, `KIND`)."""
    reg.cache_saver = lambda _cache, _path: ""


def save_in_worker(reg: Registry, payload: tuple[int, bool]) -> Any:
    """A worker's part of a save: with `merged`, its entries of the cache (the supervisor
    writes them); else its own snapshot file written -> (path, entries, or -1)."""
    index, merged = payload
    cache = caches_of(reg)[index]
    if merged:
        return cache_snapshot.dump(cache, time.time())[0]
    return cache.ext.options.snapshot, cache_ext.save(cache, None, reg.log)


class SupervisorSaver:
    """`pydist.saveCache` in the supervisor (the registry's `cache_saver`): the workers hold
    the entries."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def __call__(self, cache: Any, path: str | None) -> str:
        """The console's answer to saving `cache` (to `path`, else the configured files)."""
        from pydist.workers.supervisor import LUA_TIMEOUT     # a large cache takes a while
        sup = self.supervisor
        ids = [id(c) for c in caches_of(sup.reg)]
        if id(cache) not in ids:        # on no pool: no worker has it, nor any entry
            target = path or cache.ext.options.snapshot
            return cache_ext.saved_line(cache_ext.save(cache, target, sup.reg.log), target)
        index = ids.index(id(cache))
        if path is None:
            replies = sup.broadcast(KIND, (index, False), LUA_TIMEOUT)
            return "".join(cache_ext.saved_line(n, target) for target, n in filter(None, replies))
        dumps = [r for r in sup.broadcast(KIND, (index, True), LUA_TIMEOUT)
                 if isinstance(r, bytes)]
        data, count = cache_snapshot.merge(dumps, time.time())
        return cache_ext.saved_line(cache_ext.write(cache, path, data, count, sup.reg.log), path)
