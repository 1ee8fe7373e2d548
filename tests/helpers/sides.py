"""One config run on real dnsdist 1.7.3 and on pydist, the same steps on each, compared."""
from __future__ import annotations

from typing import Any, Callable

from tests.helpers.pydist_proc import IMPLS, DnsdistProcess


def views_of_both(start_proc: Callable[..., DnsdistProcess], conf: str,
                  values: Callable[[], dict[str, object]],
                  run: Callable[[DnsdistProcess], list[Any]], **start: Any) -> dict[str, list]:
    """What `run` saw on each implementation; `values` is called once per side (fresh
    responders for each), the process stopped after its run."""
    views = {}
    for impl in IMPLS:
        proc = start_proc(impl, conf, values(), **start)
        views[impl] = run(proc)
        proc.stop()
    return views


def assert_same(views: dict[str, list], note: object = "") -> None:
    """pydist's view equals dnsdist's, item by item (the first difference is the one shown)."""
    for mine, theirs in zip(views["pydist"], views["dnsdist"], strict=True):
        assert mine == theirs, note
