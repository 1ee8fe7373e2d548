"""Ring buffers of recent queries and responses, read by top*, grepq and dynamic blocks."""
from __future__ import annotations

from collections import deque


class Rings:
    """Queries: (time, client addr, packet, protocol). Responses add latency µs and backend."""

    def __init__(self, size: int = 10000) -> None:
        self.queries: deque = deque(maxlen=max(1, size))
        self.responses: deque = deque(maxlen=max(1, size))
