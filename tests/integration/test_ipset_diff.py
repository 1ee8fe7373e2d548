"""TimedIPSetRule, pydist against real dnsdist 1.7.3: a LuaAction adds the client, the set's
rule then refuses it, showRules counts the live entries; and the config errors of object
methods (wrong argument types) read as dnsdist's, with the caller's line."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import BOTH, Starter, available_impls
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query, run_cli

CONF = console_prelude() + """\
blocked = TimedIPSetRule()
blocked:add(newCA("192.0.2.1"), 3600)
blocked:add(newCA("2001:db8::1"), -5)
addAction(blocked:slice(), RCodeAction(DNSRCode.REFUSED))
function ban(dq) blocked:add(dq.remoteaddr, 3600) return DNSAction.None, "" end
addAction("ban.test.", LuaAction(ban))
"""


@pytest.mark.parametrize("impl", BOTH)
def test_client_added_from_lua_is_refused(impl: str, start_proc: Starter, responder) -> None:
    proc = start_proc(impl, CONF, {"backend": responder.address})
    ok = query(proc.addr(), "before.test.")
    assert ok is not None and ok.rcode() == 0

    def rules() -> str:
        return run_cli(impl, ["-C", str(proc.conf), "-e", "showRules()"]).stdout
    assert re.search(r"Src: 1 ips\s+set rcode 5", rules())      # the expired entry is not counted
    banned = query(proc.addr(), "ban.test.")
    assert banned is not None and banned.rcode() == 0       # the action only adds
    after = query(proc.addr(), "after.test.")
    assert after is not None and after.rcode() == 5
    assert re.search(r"Src: 2 ips\s+set rcode 5", rules())
    run_cli(impl, ["-C", str(proc.conf), "-e", "blocked:clear()"])
    again = query(proc.addr(), "again.test.")
    assert again is not None and again.rcode() == 0


BAD = {
    "tis.conf": 't = TimedIPSetRule()\nt:add("192.0.2.2", 60)\n',
    "cache.conf": 'getPool(""):setCache("x")\n',
    "qps.conf": 'newServer{address="127.0.0.1:5"}:setQPS("x")\n',
    "nomethod.conf": 't = TimedIPSetRule()\nprint(t:toString())\n',
}


@pytest.mark.skipif("dnsdist" not in available_impls(), reason="real dnsdist not installed")
@pytest.mark.parametrize("name", sorted(BAD))
def test_method_errors_read_as_dnsdists(name: str, tmp_path: Path) -> None:
    conf = tmp_path / name
    conf.write_text('setSecurityPollSuffix("")\n' + BAD[name])
    seen = {impl: run_cli(impl, ["--check-config", "-C", str(conf)]) for impl in ("pydist", "dnsdist")}
    assert seen["pydist"].returncode == seen["dnsdist"].returncode == 1
    assert seen["pydist"].stdout == seen["dnsdist"].stdout
