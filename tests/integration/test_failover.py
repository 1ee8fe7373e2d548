"""Failover: two backends, steady queries, one backend process gone mid-run (facts §2.2, §2.4).

Queries sent to the dead backend before the next health check are lost (UDP: no answer), then
none are. Bounded for pydist and real dnsdist alike; tools/failover prints the figures.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BOTH
from tests.helpers.pydist_proc import _env, command_for
from tools.benchlib.failover import run_failover

RATE = 100.0


@pytest.mark.parametrize("impl", BOTH)
def test_roundrobin_loses_queries_only_until_the_next_check(impl: str, tmp_path: Path) -> None:
    res = run_failover(command_for(impl), str(tmp_path), "roundrobin", RATE, before=1.0,
                       after=2.0, env=_env(impl))
    assert res.sent >= 200 and res.answered + res.lost == res.sent
    # roundrobin keeps sending half the queries to the dead server until it is marked down,
    # at the next check (interval 1 s): about RATE/2 per second of detection
    # (bounds leave room for a loaded CI machine: a check round may start late)
    assert res.marked_down is not None and res.marked_down < 2.0
    # none lost at all is possible too: a check that runs right after the stop marks it down
    # (a refused UDP check counts three failures) before a query reaches it
    assert res.lost <= RATE / 2 * 2.0 + 3
    assert res.last_loss is None or res.last_loss < res.marked_down + 0.2
    assert all(t >= -0.05 for t in res.lost_times)     # nothing lost before the stop


@pytest.mark.parametrize("impl", BOTH)
def test_least_outstanding_moves_away_before_the_check(impl: str, tmp_path: Path) -> None:
    """The dead server's unanswered queries raise its outstanding count: the default policy
    stops choosing it after a query or two, before any health check ran."""
    res = run_failover(command_for(impl), str(tmp_path), "leastOutstanding", RATE, before=1.0,
                       after=1.5, env=_env(impl))
    assert res.marked_down is not None
    assert res.lost <= 3
