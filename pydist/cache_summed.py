"""The supervisor's packet caches (worker processes, pydist.workers.stats_sum): they hold no
entry, so each becomes an instance of a subclass of its own class whose entry count is the
workers' sum. Whoever compares cache classes (a reload deciding whether a cache is kept,
pydist.reload.diff) asks for the plain class, which is the one the config made."""
from __future__ import annotations

from typing import Any

_SUMMED_CACHES: dict[type, type] = {}


def plain_type(cache: Any) -> type:
    """A cache's own class, not the supervisor's summing subclass of it."""
    cls = type(cache)
    return cls.__mro__[1] if getattr(cls, "summed", False) else cls


def summed_cache_class(base: type) -> type:
    """The summing subclass of a cache class (itself when already one); its `entries` reads
    `summed_entries`, which the supervisor sets from the workers' reports."""
    if getattr(base, "summed", False):
        return base
    cls = _SUMMED_CACHES.get(base)
    if cls is None:
        cls = _SUMMED_CACHES[base] = type(base.__name__, (base,), {
            "summed": True, "summed_entries": 0,
            "entries": property(lambda self: self.summed_entries)})
    return cls
