"""dnsperf query files: a small repeated set for cache hits, unique names for misses."""

from __future__ import annotations

import os

HIT_NAMES = 100


def write_hits(path: str, names: int = HIT_NAMES) -> str:
    """Write `names` distinct A queries; dnsperf loops over them, so all but the first are hits."""
    with open(path, "w", encoding="ascii") as f:
        f.writelines(f"h{i}.bench.example. A\n" for i in range(names))
    return path


def write_unique(path: str, count: int, tag: str) -> str:
    """Write `count` never-seen A queries; `tag` keeps names unique across runs and servers."""
    with open(path, "w", encoding="ascii") as f:
        step = 10_000
        for start in range(0, count, step):
            f.write("".join(f"{i}.{tag}.bench.example. A\n" for i in range(start, min(count, start + step))))
    return path


def remove(path: str) -> None:
    """Delete a query file that was used once (miss files are large)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
