"""pydist's structured logs: `--log-format json` (or pydist.setLogFormat("json") in the
config) turns every stdout line into one JSON object: startup, health changes, dynamic
blocks, errors; the text stays dnsdist's in `msg`."""
from __future__ import annotations

import json

import pytest

from tests.conftest import Starter
from tests.helpers.conf import LOG_EVENTS_CONFIG
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query, run_cli

CONFIG = LOG_EVENTS_CONFIG


def _events(p: DnsdistProcess, before_json: int) -> list[dict[str, object]]:
    """The JSON objects; `before_json` lines may precede them (logged by the config before
    its pydist.setLogFormat call), every later line is one JSON object."""
    p.wait_for(r"Marking downstream dead", timeout=10)
    query(p.addr(), "boom.example.", timeout=0.5)
    for i in range(40):
        query(p.addr(), f"q{i}.example.", timeout=0.05)
    p.wait_for(r"Inserting dynamic block", timeout=10)
    assert poll_until(lambda: any("LuaAction failed" in line for line in p.lines))
    assert not any(line.startswith("{") for line in p.lines[:before_json])
    return [json.loads(line) for line in p.lines[before_json:]]


@pytest.mark.parametrize("how", ["flag", "config"])
def test_json_lines_for_every_event(start_proc: Starter, how: str) -> None:
    conf = CONFIG + ('pydist.setLogFormat("json")\n' if how == "config" else "")
    args = ("--log-format", "json") if how == "flag" else ()
    p = start_proc("pydist", conf, extra_args=args, ready=None)
    docs = _events(p, 1 if how == "config" else 0)   # "Added downstream server" comes first
    kinds = {(d["event"], d["msg"].split(":")[0].split(" for ")[0]) for d in docs}  # type: ignore
    assert ("startup", "ACL allowing queries from") in kinds
    assert ("health", "Marking downstream dead (127.0.0.1") in kinds
    health = next(d for d in docs if d["event"] == "health")
    assert health["state"] == "down" and health["level"] == "warning"
    block = next(d for d in docs if d["event"] == "dynblock")
    assert (block["target"], block["seconds"], block["reason"]) == \
        ("127.0.0.1/32", 60, "Exceeded query rate")
    error = next(d for d in docs if d["event"] == "error")
    assert str(error["msg"]).startswith("LuaAction failed inside Lua, returning ServFail: ")
    if how == "flag":                         # the flag is set before the config runs
        assert docs[0]["event"] == "startup"


def test_bad_log_format_is_refused() -> None:
    res = run_cli("pydist", ["--log-format", "xml", "--check-config", "-C", "/dev/null"])
    assert res.returncode == 1 and "--log-format takes 'text' or 'json'" in res.stderr
