"""Cache snapshots (`pydist.cacheOptions{snapshot=...}`) with worker processes: each worker
holds its own packet cache, so each saves to and loads from its own file, the configured path
plus `.w<i>` (worker i). The kernel sends a client (same source address and port) to the same
worker after a restart with the same number of workers, so what that worker had cached is
where its clients look for it. One file per worker, not one merged in the supervisor: a merge
would hand every worker every entry, whose memory the workers would then each hold."""
from __future__ import annotations

import dataclasses

from pydist import cache_ext
from pydist.registry import Registry


def worker_path(path: str, slot: int) -> str:
    return f"{path}.w{slot}"


def use_worker_files(reg: Registry, slot: int) -> None:
    """In worker `slot`, before serving: every snapshot file becomes that worker's own."""
    for cache, _pools in cache_ext.configured_caches(reg):
        opts = cache.ext.options
        if opts.snapshot:
            path = worker_path(opts.snapshot, slot)
            cache.ext.options = dataclasses.replace(opts, snapshot=path)
