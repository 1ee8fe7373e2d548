"""`-e`/`-c` evaluate the config for the console only: there dnsdist 1.7.3's getServer(n) hands
out a fresh stand-in without an address whatever n is, while getServers() lists the servers
declared. Configs that log server names show it (corpus config 20)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BOTH
from tests.helpers.pydist_proc import run_cli


@pytest.mark.parametrize("impl", BOTH)
def test_servers_seen_by_the_config_in_client_mode(impl: str, tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text('setSecurityPollSuffix("")\ncontrolSocket("127.0.0.1:9")\n'
                    'newServer({address="127.0.0.1:5399", name="a"})\n'
                    'newServer("127.0.0.2:5399")\n'
                    'for k, v in pairs(getServers()) do\n'
                    '  local s = getServer(k - 1)\n'
                    '  infolog("S " .. s:getNameWithAddr() .. " " .. s:getName() .. " "'
                    ' .. tostring(s:isUp()) .. " " .. v:getNameWithAddr())\nend\n'
                    'infolog("far " .. getServer(7):getName())\n')
    out = run_cli(impl, ["-C", str(conf), "-e", "showVersion()"]).stdout
    assert out.splitlines()[:3] == ["S 0.0.0.0:0 0.0.0.0:0 false a (127.0.0.1:5399)",
                                    "S 0.0.0.0:0 0.0.0.0:0 false 127.0.0.2:5399",
                                    "far 0.0.0.0:0"], out
