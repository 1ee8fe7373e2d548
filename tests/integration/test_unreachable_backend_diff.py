"""An upstream without a route does not stop the start (issue 15): dnsdist 1.7.3 logs
`Error connecting to new server with address ...` and serves; pydist died with an OSError
traceback, at start-up and for `newServer` from the console. Each implementation runs in a
network namespace of its own that holds only loopback (no traffic leaves it)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BOTH

_REPO = Path(__file__).resolve().parents[2]


def run_in_netns(impl: str, *mode: str) -> dict:
    res = subprocess.run(["unshare", "-mn", sys.executable, "-m", "tests.helpers.netns_unreachable",
                          impl, *mode], capture_output=True, text=True, timeout=60, cwd=_REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def dnsdist_run() -> dict:
    return run_in_netns("dnsdist")


@pytest.mark.parametrize("impl", BOTH)
def test_unreachable_backends_log_and_serve(impl: str, dnsdist_run: dict) -> None:
    got = dnsdist_run if impl == "dnsdist" else run_in_netns(impl)
    assert got["alive"]
    assert got["answer"] == ["spoofed.example. 60 IN A 192.0.2.1"]
    assert got["console"] == "192.0.2.54:53\n"
    assert "Traceback" not in "\n".join(got["log"])
    # the start-up lines in dnsdist's order; the checks' repeats compared as sets
    start = [ln for ln in got["log"] if not ln.startswith(("Error checking", "Marking"))]
    ref = [ln for ln in dnsdist_run["log"] if not ln.startswith(("Error checking", "Marking"))]
    assert start == ref
    assert set(got["log"]) == set(dnsdist_run["log"])
    assert got["servers"] == dnsdist_run["servers"]


def test_make_run_config_starts_offline() -> None:
    """conf.d/default.conf (what `make run` serves) with resolv.conf naming unroutable servers:
    both start, log the same lines, and stay up."""
    py, dd = run_in_netns("pydist", "default"), run_in_netns("dnsdist", "default")
    assert py["alive"] and dd["alive"]
    assert py["log"] == dd["log"]
    assert "Error connecting to new server with address [2001:db8::53]:53: connecting socket to " \
           "[2001:db8::53]:53: Network is unreachable" in py["log"]
    assert py["answer"] == dd["answer"]
