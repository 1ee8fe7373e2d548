"""tools/reload_vs_restart's measurement, short: a reload loses nothing and fetches nothing
again; a restart fetches every name again (the figures of docs/reload.md come from it)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from tools.benchlib.reloadcmp import measure

REPO = Path(__file__).resolve().parents[2]


def test_reload_keeps_the_cache_a_restart_empties_it(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = [sys.executable, "-m", "pydist"]
    reload = measure(argv, str(tmp_path), "reload", rate=100, names=50, warm=1.0, after=1.0,
                     env=env)
    restart = measure(argv, str(tmp_path), "restart", rate=100, names=50, warm=1.0,
                      after=1.0, env=env)
    assert reload.sent >= 50 and reload.lost == 0 and reload.backend == 0
    assert restart.backend == 50
