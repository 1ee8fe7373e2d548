"""Rules and actions on key-value stores (pydist/kvstore.py, pydist/lmdbstore.py):
KeyValueStoreLookupRule, KeyValueStoreLookupAction and their range-based forms, as dnsdist 1.7.3
runs them."""
from __future__ import annotations

from typing import Any

from pydist.rules.actions import CONTINUE, Action
from pydist.rules.selectors import Selector


class KeyValueStoreLookupRule(Selector):
    """Matches when one of the query's keys is in the store (the ranged form: in a range)."""

    def __init__(self, store: Any, key: Any, ranged: bool = False) -> None:
        self.store, self.key, self.ranged = store, key, ranged

    def matches(self, dq: Any) -> bool:
        if self.ranged:
            return any(self.store.get_range(k)[0] for k in self.key.keys(dq))
        return any(self.store.get(k) is not None for k in self.key.keys(dq))

    def __str__(self) -> str:
        prefix = "range-based lookup" if self.ranged else "lookup"
        return f"{prefix} key-value store based on '{self.key}'"


class KeyValueStoreLookupAction(Action):
    """Sets the tag to the first value found for the query's keys ('' when none is)."""

    def __init__(self, store: Any, key: Any, tag: str, ranged: bool = False) -> None:
        self.store, self.key, self.tag, self.ranged = store, key, tag, ranged

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        found = b""
        for k in self.key.keys(dq):
            if self.ranged:
                # as dnsdist: a value read for a key before its range's start is kept
                hit, value = self.store.get_range(k)
                found = found if value is None else value
            else:
                value = self.store.get(k)
                hit = value is not None
                found = found if value is None else value
            if hit:
                break
        dq.set_tag(self.tag, found.decode("latin-1"))
        return CONTINUE

    def __str__(self) -> str:
        what = "do a range-based lookup in" if self.ranged else "lookup"
        return (f"{what} key-value store based on '{self.key}' and set the result in tag "
                f"'{self.tag}'")
