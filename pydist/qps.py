"""Token buckets as dnsdist's QPSLimiter: rate tokens per second, up to burst stored."""
from __future__ import annotations

import time


class QPSLimiter:
    __slots__ = ("rate", "burst", "tokens", "last", "passthrough")

    def __init__(self, rate: float = 0, burst: float = 0, passthrough: bool | None = None) -> None:
        self.rate = float(rate)
        self.burst = float(burst or rate)
        self.tokens = self.burst
        self.last = time.monotonic()
        # newServer{qps=0} builds a real limiter of rate 0: it never has a token (dnsdist 1.7.3)
        self.passthrough = rate <= 0 if passthrough is None else passthrough

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def check(self) -> bool:
        """Take a token if one is there (dnsdist's check(): consumes)."""
        if self.passthrough:
            return True
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def check_only(self) -> bool:
        """Is a token there, without taking it (used by firstAvailable)."""
        if self.passthrough:
            return True
        self._refill()
        return self.tokens >= 1.0

    def get_rate(self) -> int:
        return 0 if self.passthrough else int(self.rate)
