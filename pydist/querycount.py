"""Query counting (setQueryCount, setQueryCountFilter, getQueryCounters, clearQueryCounters),
as dnsdist 1.7.3 keeps it: every query that passed the ACL is counted under its name (no
trailing dot), or under the key a Lua filter returns, before the rules run."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class QueryCounter:
    def __init__(self) -> None:
        self.enabled = False
        self.filter: Callable[[Any], tuple[bool, str]] | None = None
        self.records: dict[str, int] = {}

    def count(self, name: str, make_dq: Callable[[], Any]) -> None:
        """One query; `make_dq` builds the DNSQuestion only when a filter wants it."""
        key = name
        if self.filter is not None:
            keep, key = self.filter(make_dq())
            if not keep:
                return
        self.records[key] = self.records.get(key, 0) + 1

    def report(self, limit: int) -> str:
        """getQueryCounters(): the header, then up to `limit` records (in insertion order;
        dnsdist's come in its hash map's order)."""
        state = "enabled" if self.enabled else "disabled"
        lines = [f"query counting is currently: {state} ({len(self.records)} records in buffer)"]
        for rank, (key, n) in enumerate(list(self.records.items())[:limit], start=1):
            lines.append(f"{rank}   {key}: {n} request(s)")
        return "\n".join(lines) + "\n"

    def clear(self) -> str:
        n = len(self.records)
        self.records.clear()
        return f"{n} records cleared from query counter buffer\n"
