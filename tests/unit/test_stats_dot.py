"""latency-dot-avg*: listed after latency-avg1000000 only when a DoT listener exists, so a
config without one keeps dnsdist 1.7.3's tables; fed by DoT answers only."""
from __future__ import annotations

from pydist.stats import DOT_LATENCY_NAMES, GAUGES, Stats, format_dump_stats


def test_listed_only_with_a_dot_listener() -> None:
    s = Stats()
    names = [n for n, _ in s.snapshot()]
    assert not set(DOT_LATENCY_NAMES) & set(names)
    s.with_dot = True
    names = [n for n, _ in s.snapshot()]
    i = names.index("latency-avg1000000")
    assert tuple(names[i + 1:i + 5]) == DOT_LATENCY_NAMES
    assert set(DOT_LATENCY_NAMES) <= GAUGES


def test_averages_move_like_dnsdists() -> None:
    s = Stats()
    s.with_dot = True
    s.dot_latency_sample(1000.0)
    s.dot_latency_sample(0.0)            # a cache hit
    assert s.latency_dot_avg100 == 1000.0 / 100 * 0.99
    assert s.latency_avg100 == 0.0       # the global averages are not touched
    text = format_dump_stats(s.snapshot())
    assert "latency-dot-avg100" in text and "        9.9" in text
