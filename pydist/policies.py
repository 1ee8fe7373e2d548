"""Load-balancing policies: each picks one server of a pool's ordered list, or None."""
from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from pydist.backend.server import DownstreamState

Servers = Sequence[DownstreamState]


class ServerPolicy:
    """A named policy; `side_effect_free` lets the cache fast path skip calling it."""

    def __init__(self, name: str, fn: Callable[[Servers, Any], DownstreamState | None],
                 is_lua: bool = False, side_effect_free: bool = False) -> None:
        self.name = name
        self.fn = fn
        self.is_lua = is_lua
        self.side_effect_free = side_effect_free

    def __call__(self, servers: Servers, dq: Any) -> DownstreamState | None:
        return self.fn(servers, dq)

    def to_string(self) -> str:
        return f'ServerPolicy {"(Lua) " if self.is_lua else ""}"{self.name}"'

    def console_str(self) -> str:
        return self.to_string()


class PolicySettings:
    """Process-wide knobs that several policies read (setRoundRobinFailOnNoServer, ...)."""
    round_robin_fail_on_no_server = False
    weighted_balancing_factor = 0.0
    consistent_hashing_balancing_factor = 0.0
    rr_counter = 0


settings = PolicySettings()


def least_outstanding(servers: Servers, dq: Any = None) -> DownstreamState | None:
    """Min of (outstanding, order, latency) over up servers; one-server fast path."""
    if len(servers) == 1:
        s = servers[0]
        return s if s.is_up() else None
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
    """First up server with a QPS token left; else leastOutstanding over the pool."""
    for s in servers:
        if s.is_up() and s.qps.check_only():
            return s
    return least_outstanding(servers, dq)


def round_robin(servers: Servers, dq: Any = None) -> DownstreamState | None:
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


def _weighted(servers: Servers, r: int, factor: float) -> DownstreamState | None:
    cands = [s for s in servers if s.is_up()]
    if factor > 0 and cands:
        total_out = sum(s.outstanding for s in cands)
        total_w = sum(s.weight for s in cands)
        target = (1 + total_out) / total_w * factor
        cands = [s for s in cands if s.outstanding <= target * s.weight]
    total = sum(s.weight for s in cands)
    if not total:
        return None
    r %= total
    acc = 0
    for s in cands:
        acc += s.weight
        if acc > r:
            return s
    return None


def wrandom(servers: Servers, dq: Any = None) -> DownstreamState | None:
    return _weighted(servers, random.getrandbits(31), settings.weighted_balancing_factor)


BUILTIN = {
    "leastOutstanding": ServerPolicy("leastOutstanding", least_outstanding, side_effect_free=True),
    "firstAvailable": ServerPolicy("firstAvailable", first_available, side_effect_free=True),
    "roundrobin": ServerPolicy("roundrobin", round_robin),
    "wrandom": ServerPolicy("wrandom", wrandom, side_effect_free=True),
}
