"""Reload counters: reloads done, failed, the time of the last one, and its result. They join
dumpStats, /jsonstat, /api/v1/.../statistics and /metrics (as dnsdist_pydist_*) only once a
reload has been attempted, so a process never reloaded prints exactly dnsdist's tables."""
from __future__ import annotations

from typing import Any

from pydist.reload.model import ReloadResult

DONE, FAILED, LAST = "pydist-reloads", "pydist-reloads-failed", "pydist-last-reload-time"
HELP = {DONE: "Number of configuration reloads applied",
        FAILED: "Number of configuration reloads refused (the running configuration was kept)",
        LAST: "UNIX time of the last configuration reload attempt"}


class ReloadHistory:
    """Owned by the engine, so it outlives every registry a reload replaces."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.last_time = 0.0
        self.last: ReloadResult | None = None
        self.running = False

    def record(self, result: ReloadResult, stats: Any) -> None:
        if result.ok:
            self.done += 1
        else:
            self.failed += 1
        self.last_time = result.when
        self.last = result
        self.publish(stats)

    def publish(self, stats: Any) -> None:
        """Register the three entries in the (carried over) Stats, once."""
        if DONE in stats.extra:
            return
        stats.extra[DONE] = lambda: self.done
        stats.extra[FAILED] = lambda: self.failed
        stats.extra[LAST] = lambda: int(self.last_time)
        stats.extra_help.update(HELP)
