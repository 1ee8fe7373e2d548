"""State carried from the running registry into the new one, by identity. Each function
moves one kind of state; none touches sockets or the loop (pydist/reload/swap.py does)."""
from __future__ import annotations

from typing import Any

from pydist.backend.server import DownstreamState
from pydist.registry import Registry
from pydist.reload.diff import ReloadPlan

# what a server learnt while running: health, latency, counters (kept for a changed server)
SERVER_STATE = ("availability", "up_status", "check_failures", "check_successes",
                "check_counter", "queries", "responses", "send_errors", "reuseds",
                "latency_usec", "latency_usec_tcp", "query_load", "drop_rate",
                "_prev_queries", "_prev_reuseds", "tls_resumptions")
DYNBLOCK_TABLES = ("nets", "index", "port_index", "names", "max_labels", "active", "last_purge")


def adopt_handle(old: Any, new: Any, attr: str) -> None:
    """The Lua handle the new config holds for `new` (a `local s = newServer{}`) now drives
    `old`, the object kept: the console's `s:setDown()` reaches the running server."""
    handle = getattr(new, "lua_handle", None)
    if handle is not None:
        setattr(handle, attr, old)
        old.lua_handle = handle


def globals_(old: Registry, new: Registry) -> None:
    """Global counters, rings and the dynamic blocks with their expiry; the new config's
    dynamic-block settings (default action, purge interval) stay its own."""
    stats = old.stats
    stats.with_dot = stats.with_dot or new.stats.with_dot
    for name, fn in new.stats.extra.items():       # pydist.cacheOptions of new caches
        stats.extra.setdefault(name, fn)
    new.stats = stats
    new.dynblocks.stats = stats
    new.rings = old.rings
    for attr in DYNBLOCK_TABLES:
        setattr(new.dynblocks, attr, getattr(old.dynblocks, attr))


def _replace_in_pools(new: Registry, stale: DownstreamState, kept: DownstreamState) -> None:
    for pool in new.pools.values():
        if stale in pool.servers:
            pool.servers = tuple(kept if s is stale else s for s in pool.servers)
    new.servers = [kept if s is stale else s for s in new.servers]


def servers(plan: ReloadPlan, new: Registry) -> None:
    """Unchanged servers: the running object itself takes the new one's place (health,
    latency, counters, UDP sockets, open TCP connections and in-flight queries with it).
    Changed ones (other options): the new object, with what the old one learnt."""
    for old_s, new_s in plan.kept_servers:
        _replace_in_pools(new, new_s, old_s)
        old_s.pools = list(new_s.pools)
        adopt_handle(old_s, new_s, "server")
    for old_s, new_s in plan.changed_servers:
        for attr in SERVER_STATE:
            setattr(new_s, attr, getattr(old_s, attr))
        new_s.tcp = dict(old_s.tcp)


def caches(plan: ReloadPlan, new: Registry) -> None:
    """A cache whose pool and settings are unchanged is the running cache, entries and
    counters; a resized one keeps its entries too. A cache with other settings is a new
    cache, empty and counting from 0 (the old entries may not be valid under them)."""
    for c in plan.caches:
        if c.old is None:
            continue
        if c.resized:
            c.old.resize(c.new.max_entries)
        for pool in new.pools.values():
            if pool.cache is c.new:
                pool.cache = c.old
        adopt_handle(c.old, c.new, "cache")


def rules(plan: ReloadPlan) -> None:
    """Rules that did not change keep their hit counters and their UUID."""
    for old_r, new_r in plan.kept_rules:
        new_r.matches = old_r.matches
        new_r.uuid = old_r.uuid


def listeners(plan: ReloadPlan, new: Registry) -> None:
    """An unchanged listener is the running one: its sockets, its counters, its TLS context
    (ticket keys included)."""
    kept = {id(n): o for o, n in plan.kept_listeners}
    new.frontends = [kept.get(id(fe), fe) for fe in new.frontends]
    for o, n in plan.kept_listeners:
        if o.doh is not None and n.doh is not None:
            # what the new file set on it (getDOHFrontend(n):setResponsesMap...) applies to
            # the next connections; counters and TLS context are the running ones
            n.doh.counters, n.doh.tls = o.doh.counters, o.doh.tls
            o.doh = n.doh
