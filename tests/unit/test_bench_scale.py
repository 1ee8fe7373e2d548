"""The benchmark's issue-18 scenarios: the 20-rule chain at 1,000 and 100,000 hot names (in a
cache that holds them all) and RSS with a full 100,000-entry cache under hits; their hit files
have the names they say."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from benchlib import configs, queries  # noqa: E402
from benchlib.scenarios import SCENARIOS  # noqa: E402


def test_scale_scenarios() -> None:
    small, big = SCENARIOS["udp-hit-20rules-1k"], SCENARIOS["udp-hit-20rules-100k"]
    assert (small.rules, small.hot_names, big.rules, big.hot_names) == (20, 1000, 20, 100_000)
    assert small.cache_size == big.cache_size >= 2 * big.hot_names   # every name fits
    full = SCENARIOS["hit-full-rss"]
    assert full.queries == "hit" and full.hot_names == full.cache_size == 100_000
    assert SCENARIOS["udp-hit"].hot_names == queries.HIT_NAMES


def test_config_carries_the_cache_size(tmp_path: Path) -> None:
    assert "newPacketCache(200000," in configs.under_test(5300, 5301, cache_size=200_000)
    path = queries.write_hits(str(tmp_path / "h.txt"), 1000)
    assert len(set(Path(path).read_text().splitlines())) == 1000
