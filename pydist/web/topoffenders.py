"""Dynamic-block top offenders for /metrics, as dnsdist 1.7.3 ranks them: once a period (60 s),
the hits per second of every live block over that period, the top 20 per reason, netmasks and
suffixes apart. Until the first period has passed there is nothing to show (as in dnsdist)."""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

PERIOD = 60.0
TOP = 20

Ranking = list[tuple[str, str, float]]      # (reason, netmask or suffix, hits per second)


class TopOffenders:
    """Fed by the engine's one-second tick; read by the Prometheus exporter."""

    def __init__(self, dynblocks: Any, clock: Any = time.monotonic) -> None:
        self.dynblocks = dynblocks
        self.clock = clock
        self.next_at = clock() + PERIOD
        self.seen: dict[tuple[str, str], int] = {}
        self.netmasks: Ranking = []
        self.suffixes: Ranking = []

    def tick(self) -> None:
        now = self.clock()
        if now >= self.next_at:
            self.next_at = now + PERIOD
            self.collect(time.time())

    def collect(self, wall: float) -> None:
        dyn = self.dynblocks
        if dyn is None:
            return
        seen: dict[tuple[str, str], int] = {}
        nets = [("n", str(net), b) for net, b in dyn.nets.items() if wall < b.until]
        names = [("s", text, b) for text, b in dyn.names.values() if wall < b.until]
        rankings: dict[str, dict[str, list[tuple[str, float]]]] = {"n": defaultdict(list),
                                                                   "s": defaultdict(list)}
        for kind, what, b in nets + names:
            before = self.seen.get((kind, what), 0)
            hits = b.blocks - before if b.blocks >= before else b.blocks
            seen[(kind, what)] = b.blocks
            rankings[kind][b.reason].append((what, hits / PERIOD))
        self.seen = seen
        self.netmasks = _top(rankings["n"])
        self.suffixes = _top(rankings["s"])


def _top(by_reason: dict[str, list[tuple[str, float]]]) -> Ranking:
    out: Ranking = []
    for reason in sorted(by_reason):
        ranked = sorted(by_reason[reason], key=lambda wr: (-wr[1], wr[0]))[:TOP]
        out += [(reason, what, rate) for what, rate in ranked]
    return out
