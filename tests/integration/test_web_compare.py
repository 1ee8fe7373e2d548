"""pydist-compare --metrics with pydist itself as side B: the /metrics of pydist and of real
dnsdist 1.7.3, scraped after the same replay, are equivalent (names, labels, counters)."""
from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from pydist.compare.cli import main
from tests.integration.test_compare import CONFIG, QUERIES

pytestmark = pytest.mark.skipif(shutil.which("dnsdist") is None,
                                reason="real dnsdist 1.7.3 is not installed")
REPO = Path(__file__).resolve().parents[2]


def test_metrics_equivalent_with_pydist_as_side_b(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)       # `python -m pydist` from this checkout
    conf, queries, report = tmp_path / "dnsdist.conf", tmp_path / "q.txt", tmp_path / "r.json"
    conf.write_text(CONFIG)
    queries.write_text(QUERIES)
    pydist = shlex.join([sys.executable, "-m", "pydist"])
    code = main(["-C", str(conf), "--pydist", pydist, "--report", str(report), "--timeout", "1",
                 "--queries", str(queries), "--metrics"])
    out = capsys.readouterr().out
    result = json.loads(report.read_text())
    assert code == 0, out
    assert result["verdict"] == "equivalent" and result["differences"] == []
    assert result["queries_sent"] == 9
