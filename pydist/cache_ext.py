"""pydist's own cache features (issue 20), set per packet cache by ``pydist.cacheOptions``:
serve-stale with refresh and prefetch (pydist/cache_stale.py), snapshots
(pydist/cache_snapshot.py) and a shared level in Redis (pydist/cache_redis.py).

Off unless configured: a cache becomes an ``ExtendedPacketCache`` (its class swapped in place,
so every pool holding it sees the change) only when ``pydist.cacheOptions`` names it. A plain
``PacketCache`` runs none of this code, so its answers, counters and hit cost stay dnsdist's.
The counters are listed in dumpStats(), /metrics and the API only once a cache is configured.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pydist import cache_snapshot
from pydist.cache import CacheKey, PacketCache
from pydist.cache_counters import CacheCounters, counters_for
from pydist.cache_redis import RedisLevel
from pydist.cache_stale import (
    STALE_ANSWER_TTL,
    Refresher,
    TokenBucket,
    question_end,
    stale_eligible,
)


@dataclass(frozen=True)
class Prefetch:
    """``prefetch = {minHits, remaining, qps}``: which entries are refreshed early, how often."""
    min_hits: int = 3
    remaining: int = 10       # percent of the TTL left below which a hot entry is refreshed
    qps: float = 100.0        # prefetch budget: refresh queries per second


@dataclass(frozen=True)
class CacheOptions:
    """What ``pydist.cacheOptions(pc, {...})`` set (names in docs/cache.md)."""
    stale_window: int = 0
    stale_ttl: int = STALE_ANSWER_TTL
    stale_rcodes: frozenset[int] | None = None     # None: positive answers only
    prefetch: Prefetch | None = None
    snapshot: str = ""
    redis: str = ""
    redis_timeout: float = 0.002
    redis_namespace: str | None = None              # None: the names of the pools using it
    refresh_timeout: float | None = None            # None: setUDPTimeout's value


@dataclass
class CacheExtension:
    """The per-cache state of the features: options, refresher, hit counts, Redis level."""
    options: CacheOptions
    counters: CacheCounters
    refresher: Refresher | None = None
    bucket: TokenBucket | None = None
    redis: RedisLevel | None = None
    hit_counts: dict[Any, int] = field(default_factory=dict)   # entry -> hits (prefetch)


class ExtendedPacketCache(PacketCache):
    """A packet cache with pydist's features; only configured caches get this class."""

    ext: CacheExtension

    def lookup(self, query: bytes, qname_end: int, udp: bool, now: float,
               stale_ok_for: int = 0, orig_flags: int | None = None,
               exact: bool = True) -> tuple[bytearray | None, CacheKey | None]:
        ext = self.ext
        if ext.options.stale_window:
            stale = self._stale(query, qname_end, udp, now, stale_ok_for, orig_flags)
            if stale is not None:
                return stale
        buf, key = super().lookup(query, qname_end, udp, now, stale_ok_for, orig_flags, exact)
        if buf is not None and ext.options.prefetch is not None:
            entry = self.entry_for(udp, key)
            if entry is not None:
                self._count_hit(entry, udp, key, query, qname_end, int(now), now)
        return buf, key

    def _stale(self, query: bytes, qname_end: int, udp: bool, now: float, stale_ok_for: int,
               orig_flags: int | None) -> tuple[bytearray, CacheKey] | None:
        """An expired entry inside the stale window, served with the stale TTL (a refresh
        started); None when there is none (dnsdist's own lookup decides then)."""
        key = self.make_key(query, qname_end)
        entry = self.entry_for(udp, key) if key is not None else None
        now_s = int(now)
        if entry is None or entry.validity > now_s:
            return None
        expired_for = now_s - entry.validity
        opts = self.ext.options
        if (expired_for < stale_ok_for or expired_for >= opts.stale_window
                or not stale_eligible(entry.response, opts.stale_rcodes)
                or (self.parse_ecs and not self._ident_matches(entry, query, qname_end))):
            return None
        buf = self._serve(entry, query, qname_end, udp, now_s, opts.stale_ttl, orig_flags, False)
        if buf is None:
            return None
        self.hits += 1
        self.ext.counters.stale_served += 1
        self._refresh(udp, key, query, qname_end, now, stale=True)
        return buf, key

    def lookup_exact(self, query: bytes, udp: bool, now_s: int,
                     memo: dict[bytes, tuple] | None = None) -> bytearray | None:
        buf = super().lookup_exact(query, udp, now_s, memo)
        if buf is not None and self.ext.options.prefetch is not None:
            entry = self.exact_entry(query, udp)
            if entry is not None:     # no clock read per hit: the drain loop's second will do
                self._count_hit(entry, udp, None, query, None, now_s, float(now_s))
        return buf

    def insert(self, lookup_key: CacheKey | None, query: bytes, qname_end: int, udp: bool,
               response: bytes, now: float, temp_failure_ttl: int | None = None,
               same_question: bool = False) -> Any:
        entry = super().insert(lookup_key, query, qname_end, udp, response, now,
                               temp_failure_ttl, same_question)
        level = self.ext.redis
        if entry is not None and level is not None:
            key = lookup_key if lookup_key is not None else self.make_key(query, qname_end)
            level.store(udp, key, entry.ident, entry.original(), entry.added, entry.validity,
                        now)
        return entry

    def purge_expired(self, upto: int, now: float) -> int:
        """Expired entries stay while they may still be served stale."""
        ext = self.ext
        if ext.hit_counts:
            now_s = int(now)
            for entry in [e for e, _ in ext.hit_counts.items() if e.validity <= now_s]:
                del ext.hit_counts[entry]
        if ext.refresher is not None:
            ext.refresher.forget_failures(time.monotonic())
        return super().purge_expired(upto, now - ext.options.stale_window)

    # ---- prefetch and refresh
    def _count_hit(self, entry: Any, udp: bool, key: Any, query: bytes, qname_end: int | None,
                   now_s: int, now: float) -> None:
        ext = self.ext
        pf = ext.options.prefetch
        counts = ext.hit_counts
        n = counts.get(entry, 0) + 1
        counts[entry] = n
        left = entry.validity - now_s
        if n < pf.min_hits or left * 100 >= pf.remaining * (entry.validity - entry.added):
            return
        if qname_end is None:
            qname_end = question_end(query)
            if qname_end is None:
                return
        if key is None:
            key = self.make_key(query, qname_end)
        self._refresh(udp, key, query, qname_end, now, stale=False)

    def _refresh(self, udp: bool, key: Any, query: bytes, qname_end: int, now: float,
                 stale: bool) -> None:
        ext = self.ext
        refresher = ext.refresher
        mono = time.monotonic()
        if refresher is None or not refresher.may_start(udp, key, mono):
            return
        if not stale:
            if ext.bucket is not None and not ext.bucket.take(mono):
                ext.counters.prefetch_over_budget += 1
                return
            ext.counters.prefetches += 1
        else:
            ext.counters.stale_refreshes += 1
        refresher.start(udp, key, query, qname_end)

    # ---- shared level and snapshots
    def bring_in(self, udp: bool, key: Any, ident: Any, found: tuple, now: float) -> bool:
        """Store an entry found in Redis locally, with its own times (no write back)."""
        response, added, validity, offsets = found
        return self.store(udp, key, response, added, validity, offsets, ident,
                          int(now)) is not None

    def ident_for(self, query: bytes, qname_end: int) -> Any:
        return self._ident_of(query, qname_end)


def enable(cache: PacketCache, options: CacheOptions, stats: Any) -> None:
    """Make ``cache`` an extended cache with ``options`` (again: the new options replace)."""
    counters = counters_for(stats)
    cache.__class__ = ExtendedPacketCache
    assert isinstance(cache, ExtendedPacketCache)
    cache.ext = CacheExtension(options, counters)
    pf = options.prefetch
    if pf is not None and pf.qps > 0:
        cache.ext.bucket = TokenBucket(pf.qps)


def configured_caches(reg: Any) -> list[tuple[ExtendedPacketCache, list[Any]]]:
    """Each extended cache set on a pool, with the pools using it (in declaration order)."""
    found: dict[int, tuple[ExtendedPacketCache, list[Any]]] = {}
    for pool in reg.pools.values():
        c = pool.cache
        if isinstance(c, ExtendedPacketCache):
            found.setdefault(id(c), (c, []))[1].append(pool)
    return list(found.values())


def _server_picker(pools: list[Any]) -> Callable[[], Any]:
    """The server a refresh goes to: an up server of the first pool that may take one, the
    least busy first (ECS and proxy protocol servers need the client's context: never)."""
    def pick() -> Any:
        for pool in pools:
            ok = [s for s in pool.servers if s.is_up() and not s.use_ecs and not s.use_proxy]
            if ok:
                return min(ok, key=lambda s: (s.outstanding, s.order))
        return None
    return pick


def start(reg: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Serving starts: snapshots read back, refreshers and Redis clients made ready."""
    now = time.time()
    for cache, pools in configured_caches(reg):
        ext, opts = cache.ext, cache.ext.options
        if opts.snapshot:
            cache_snapshot.load(cache, opts.snapshot, now, opts.stale_window, ext.counters,
                                reg.log)
        if opts.stale_window > 0 or opts.prefetch is not None:
            timeout = opts.refresh_timeout or float(reg.settings.udp_timeout)
            ext.refresher = Refresher(cache, ext.counters, _server_picker(pools), timeout,
                                      reg.log)
            ext.refresher.loop = loop
        if opts.redis:
            ns = opts.redis_namespace
            if ns is None:
                ns = ",".join(p.name for p in pools)
            ext.redis = RedisLevel(opts.redis, opts.redis_timeout, ns.encode(), ext.counters,
                                   reg.log)
            ext.redis.start(loop)
            cache.second_level = ext.redis


def save(cache: ExtendedPacketCache, path: str | None, log: Callable[[str], None]) -> int:
    """Write ``cache``'s snapshot (to ``path`` or its configured file); -1 when it failed."""
    target = path or cache.ext.options.snapshot
    if not target:
        return -1
    data, n = cache_snapshot.dump(cache, time.time())
    return write(cache, target, data, n, log)


def write(cache: ExtendedPacketCache, target: str, data: bytes, n: int,
          log: Callable[[str], None]) -> int:
    """A snapshot of ``n`` entries of ``cache`` (its own, or several workers' merged) written
    to ``target``; ``n``, or -1 when it failed."""
    try:
        cache_snapshot.write(target, data)
    except OSError as e:
        log(f"Error writing the cache snapshot '{target}': {e.strerror}")
        return -1
    cache.ext.counters.snapshot_saved += n
    return n


def saved_line(n: int, target: str) -> str:
    """The console's answer to pydist.saveCache: `n` entries written, or -1."""
    return (f"Saved {n} entries to '{target}'\n" if n >= 0 else
            f"Error: the snapshot could not be written to '{target}'\n")


def save_all(reg: Any) -> None:
    """At shutdown: every cache with a snapshot file writes it."""
    for cache, _ in configured_caches(reg):
        if cache.ext.options.snapshot:
            n = save(cache, None, reg.log)
            if n >= 0:
                reg.log(f"Saved {n} entries to the cache snapshot '{cache.ext.options.snapshot}'")


def wants_shutdown_save(reg: Any) -> bool:
    return any(c.ext.options.snapshot for c, _ in configured_caches(reg))

