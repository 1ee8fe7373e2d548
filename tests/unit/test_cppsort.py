"""std::sort's order, which topRules() shows: sorted like any sort, ties as libstdc++ leaves them
(the tie orders below are the ones real dnsdist 1.7.3 printed)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pydist.rules.cppsort import std_sort


@given(st.lists(st.integers(0, 5), max_size=200))
def test_sorts_like_any_sort(items: list[int]) -> None:
    out = list(items)
    std_sort(out, lambda a, b: a < b)
    assert out == sorted(items)


def test_small_ties_keep_order() -> None:
    items = [(0, i) for i in range(12)]
    std_sort(items, lambda a, b: b[0] < a[0])
    assert [i for _, i in items] == list(range(12))


def test_large_ties_follow_introsort() -> None:
    items = [(0, i) for i in range(40)]          # 40 rules, none matched yet
    std_sort(items, lambda a, b: b[0] < a[0])
    assert [i for _, i in items][:2] == [30, 21]  # dnsdist's topRules() starts with q31, q22
