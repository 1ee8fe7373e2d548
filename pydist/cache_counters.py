"""The counters of pydist's cache features (pydist/cache_ext.py): one set of plain integers
per process, summed over the configured caches, and their names and HELP texts as dumpStats,
/metrics, the API and carbon show them."""
from __future__ import annotations

from pydist.stats import Stats

# name in dumpStats/metrics -> (attribute, /metrics HELP)
COUNTERS: dict[str, tuple[str, str]] = {
    "cache-stale-served": ("stale_served", "Number of expired cache entries served stale"),
    "cache-stale-refreshes": ("stale_refreshes",
                              "Number of background refreshes started by a stale answer"),
    "cache-prefetches": ("prefetches", "Number of background refreshes of hot cache entries"),
    "cache-prefetch-over-budget": ("prefetch_over_budget",
                                   "Number of prefetches skipped by the per-second budget"),
    "cache-refresh-failures": ("refresh_failures",
                               "Number of background refreshes that failed or timed out"),
    "cache-snapshot-loaded": ("snapshot_loaded", "Number of cache entries loaded from a snapshot"),
    "cache-snapshot-dropped": ("snapshot_dropped",
                               "Number of snapshot entries dropped (expired or not storable)"),
    "cache-snapshot-saved": ("snapshot_saved", "Number of cache entries written to snapshots"),
    "cache-redis-hits": ("redis_hits", "Number of local cache misses answered from Redis"),
    "cache-redis-misses": ("redis_misses", "Number of Redis lookups that found nothing"),
    "cache-redis-errors": ("redis_errors", "Number of Redis errors (connection, garbage)"),
    "cache-redis-timeouts": ("redis_timeouts", "Number of Redis calls over their time budget"),
    "cache-redis-skipped": ("redis_skipped",
                            "Number of Redis lookups skipped while Redis was unreachable"),
    "cache-redis-writes": ("redis_writes", "Number of cache entries written to Redis"),
    "cache-redis-write-skips": ("redis_write_skips",
                                "Number of Redis writes skipped (too many pending)"),
}


class CacheCounters:
    """One set of plain integers for all configured caches of a process."""

    def __init__(self) -> None:
        for attr, _ in COUNTERS.values():
            setattr(self, attr, 0)


def counters_for(stats: Stats) -> CacheCounters:
    """The process's counters, registered with the global table at the first call only, so a
    config without ``pydist.cacheOptions`` keeps dnsdist's tables."""
    counters = getattr(stats, "cache_ext_counters", None)
    if counters is None:
        counters = stats.cache_ext_counters = CacheCounters()
        for name, (attr, help_text) in COUNTERS.items():
            stats.extra[name] = (lambda a=attr: getattr(counters, a))
            stats.extra_help[name] = help_text
    return counters
