"""Load-balancing policies: each picks one server of a pool's ordered list, or None.

As dnsdist 1.7.3 (facts §3): the list is the pool's, sorted by order; weighted policies
(wrandom, whashed) and chashed may cap each server's share (bounded load) with a balancing
factor; whashed and chashed hash the query name with lookup2 seeded by the perturbation.
"""
from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from pydist.backend.server import DOWN, UP, DownstreamState
from pydist.dns.burtle import burtle_ci

Servers = Sequence[DownstreamState]


class ServerPolicy:
    """A named policy; `side_effect_free` lets the cache fast path skip calling it."""

    def __init__(self, name: str, fn: Callable[[Servers, Any], DownstreamState | None],
                 is_lua: bool = False, side_effect_free: bool = False,
                 needs_dq: bool = False) -> None:
        self.name = name
        self.fn = fn
        self.is_lua = is_lua
        self.side_effect_free = side_effect_free
        self.needs_dq = needs_dq or is_lua   # the packet path builds a DNSQuestion for it

    def __call__(self, servers: Servers, dq: Any) -> DownstreamState | None:
        return self.fn(servers, dq)

    def to_string(self) -> str:
        return f'ServerPolicy {"(Lua) " if self.is_lua else ""}"{self.name}"'

    def console_str(self) -> str:
        return self.to_string()


class PolicySettings:
    """The knobs several policies read (setRoundRobinFailOnNoServer, setWeightedBalancingFactor,
    setWHashedPertubation...): declared configuration, so one lives in each Registry and the
    built-in policies are bound to it (builtin_policies)."""

    def __init__(self) -> None:
        self.round_robin_fail_on_no_server = False
        self.weighted_balancing_factor = 0.0
        self.consistent_hashing_balancing_factor = 0.0
        self.rr_counter = 0
        # dnsdist draws it once at startup; setWHashedPertubation(n) fixes it
        self.hash_perturbation = random.getrandbits(32)


INT_MAX = 2147483647


def least_outstanding(servers: Servers, dq: Any = None) -> DownstreamState | None:
    """Min of (outstanding, order, latency) over up servers; one-server fast path."""
    if len(servers) == 1:     # every miss of a one-server pool: is_up() written out
        s = servers[0]
        a = s.availability
        return s if a != DOWN and (a == UP or s.up_status) else None
    best = None
    best_key = None
    for s in servers:
        if not s.is_up():
            continue
        key = (s.outstanding, s.order, s.latency_usec)
        if best_key is None or key < best_key:
            best, best_key = s, key
    return best


def first_available(servers: Servers, dq: Any = None) -> DownstreamState | None:
    """First up server with a QPS token; else leastOutstanding over the pool. The token is
    only looked at here: it is spent when the query is sent (the packet path), so cache hits
    spend none, as dnsdist 1.7.3 (observed)."""
    for s in servers:
        if s.is_up() and s.qps.check_only():
            return s
    return least_outstanding(servers, dq)


def round_robin(servers: Servers, dq: Any, settings: PolicySettings) -> DownstreamState | None:
    cands = [s for s in servers if s.is_up()]
    if not cands:
        if settings.round_robin_fail_on_no_server:
            return None
        cands = list(servers)
        if not cands:
            return None
    s = cands[settings.rr_counter % len(cands)]
    settings.rr_counter += 1
    return s


def _target_load(servers: Servers, factor: float) -> float:
    """Bounded load: (1 + outstanding of up servers) / their total weight x factor."""
    load, weight = 1, 0
    for s in servers:
        if s.is_up():
            load += s.outstanding
            weight += s.weight
    return load / weight * factor if weight else float("inf")


def weighted(servers: Servers, val: int, factor: float) -> DownstreamState | None:
    """dnsdist's valrandom: cumulative weights of eligible up servers; first sum > val % total."""
    target = _target_load(servers, factor) if factor > 0 else 0.0
    cands: list[tuple[int, DownstreamState]] = []
    total = 0
    for s in servers:
        if s.is_up() and (factor <= 0 or s.outstanding <= target * s.weight):
            total = INT_MAX if s.weight > INT_MAX - total else total + s.weight
            cands.append((total, s))
    if not total:
        return None
    r = val % total
    for acc, s in cands:
        if acc > r:
            return s
    return None


def wrandom(servers: Servers, dq: Any, settings: PolicySettings) -> DownstreamState | None:
    return weighted(servers, random.getrandbits(31), settings.weighted_balancing_factor)


_HASHES: dict[tuple[bytes, int], int] = {}
HASH_MEMO_MAX = 4096       # bounded (under 1 MiB): a flood of unique names only clears it


def qname_hash(dq: Any, perturbation: int) -> int:
    """DNSName::hash(perturbation): lookup2 over the lowercased wire qname (memoised: about
    7 µs of Python per name otherwise)."""
    key = (bytes(dq.data[12:dq.qname_end]), perturbation)
    h = _HASHES.get(key)
    if h is None:
        if len(_HASHES) >= HASH_MEMO_MAX:
            _HASHES.clear()
        h = _HASHES[key] = burtle_ci(key[0], key[1])
    return h


def whashed(servers: Servers, dq: Any, settings: PolicySettings) -> DownstreamState | None:
    """wrandom with the qname hash as the draw: one name always goes to the same server."""
    return weighted(servers, qname_hash(dq, settings.hash_perturbation),
                    settings.weighted_balancing_factor)


def hash_points(server: DownstreamState, perturbation: int) -> list[int]:
    """The server's `weight` points on the ring: lookup2 of "<uuid>-<k>", k = weight..1, sorted.

    Cached per (uuid, weight, perturbation), as dnsdist computes them once."""
    key = (server.uuid, server.weight, perturbation)
    cached = server.hash_points
    if cached is None or cached[0] != key:
        seed = perturbation
        pts = sorted(burtle_ci(f"{server.uuid}-{k}".encode(), seed)
                     for k in range(server.weight, 0, -1))
        cached = server.hash_points = (key, pts)
    return cached[1]


def chashed_from_hash(servers: Servers, h: int, settings: PolicySettings
                      ) -> DownstreamState | None:
    """The eligible server owning the smallest point >= h; else the one owning the smallest."""
    factor = settings.consistent_hashing_balancing_factor
    target = _target_load(servers, factor) if factor > 0 else 0.0
    sel = first = None
    sel_pt = first_pt = 1 << 32
    for s in servers:
        if not s.is_up() or (factor > 0 and s.outstanding > target * s.weight):
            continue
        pts = hash_points(s, settings.hash_perturbation)
        if not pts:
            continue
        if pts[0] < first_pt:
            first, first_pt = s, pts[0]
        i = bisect.bisect_left(pts, h)
        if i < len(pts) and pts[i] < sel_pt:
            sel, sel_pt = s, pts[i]
    return sel if sel is not None else first


def chashed(servers: Servers, dq: Any, settings: PolicySettings) -> DownstreamState | None:
    return chashed_from_hash(servers, qname_hash(dq, settings.hash_perturbation), settings)


def builtin_policies(settings: PolicySettings) -> dict[str, ServerPolicy]:
    """dnsdist's built-in policies, those that read knobs bound to `settings` (a registry's)."""
    def bound(fn: Callable[..., DownstreamState | None]) -> Callable[..., DownstreamState | None]:
        return partial(fn, settings=settings)      # C-level: no extra Python frame per query
    return {
        "leastOutstanding": ServerPolicy("leastOutstanding", least_outstanding,
                                         side_effect_free=True),
        "firstAvailable": ServerPolicy("firstAvailable", first_available, side_effect_free=True),
        "roundrobin": ServerPolicy("roundrobin", bound(round_robin)),
        "wrandom": ServerPolicy("wrandom", bound(wrandom), side_effect_free=True),
        "whashed": ServerPolicy("whashed", bound(whashed), side_effect_free=True, needs_dq=True),
        "chashed": ServerPolicy("chashed", bound(chashed), side_effect_free=True, needs_dq=True),
    }
