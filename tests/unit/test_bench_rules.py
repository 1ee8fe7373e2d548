"""The benchmark's rule scenarios: their configs carry the chain they name, and both servers
accept those configs (--check-config), so the figures compare the same work."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from benchlib import configs  # noqa: E402
from benchlib.scenarios import SCENARIOS, parse_list  # noqa: E402

from tests.conftest import available_impls  # noqa: E402
from tests.helpers.pydist_proc import run_cli  # noqa: E402


def test_rule_scenarios_exist() -> None:
    assert SCENARIOS["udp-hit-10rules"].rules == 10 and not SCENARIOS["udp-hit-10rules"].tcp
    assert SCENARIOS["udp-hit-lua"].lua_action
    assert [s.name for s in parse_list("udp-hit-10rules,udp-hit-lua")] == [
        "udp-hit-10rules", "udp-hit-lua"]


@pytest.mark.parametrize("impl", available_impls())
def test_rule_configs_load(impl: str, tmp_path: Path) -> None:
    text = configs.under_test(5300, 5301, rules=10, lua_action=True)
    assert text.count("QTypeRule(DNSQType.HINFO)") == 10 and "LuaAction(benchNoop)" in text
    conf = tmp_path / "bench.conf"
    conf.write_text(text)
    res = run_cli(impl, ["--check-config", "-C", str(conf)])
    assert res.returncode == 0 and res.stdout.strip() == f"Configuration '{conf}' OK!"
