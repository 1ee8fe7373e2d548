"""PoolAction towards a pool nobody created: dnsdist 1.7.3's getPool() throws, so the query is
dropped without counting no-policy and no pool appears; an existing pool without servers does
count no-policy. Both checked against real dnsdist."""
from __future__ import annotations

import re

import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query, run_cli

CONF = console_prelude() + """\
getPool("empty")
addAction("missing.test.", PoolAction("nope"))
addAction("empty.test.", PoolAction("empty"))
"""


def _stat(proc, name: str) -> int:
    out = run_cli(proc.impl, ["-C", str(proc.conf), "-e", "dumpStats()"]).stdout
    match = re.search(rf"(?:^|\s){re.escape(name)}\s+(\d+)", out)
    assert match is not None, out
    return int(match.group(1))


@pytest.mark.parametrize("impl", BOTH)
def test_missing_and_empty_pools(impl: str, start_proc: Starter, responder) -> None:
    proc = start_proc(impl, CONF, {"backend": responder.address})
    assert query(proc.addr(), "missing.test.", timeout=0.5) is None
    assert _stat(proc, "no-policy") == 0
    pools = run_cli(impl, ["-C", str(proc.conf), "-e", "showPools()"]).stdout
    assert "nope" not in pools and "empty" in pools
    assert query(proc.addr(), "empty.test.", timeout=0.5) is None
    assert _stat(proc, "no-policy") == 1
    assert _stat(proc, "queries") == 2
    ok = query(proc.addr(), "other.test.")
    assert ok is not None and ok.rcode() == 0
