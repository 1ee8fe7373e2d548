"""`pydist.trace()` on a running pydist's console: the trace of one query through the live
rules, pools and cache, with nothing sent to a backend and no counter moved. dnsdist has no
`pydist` table: the same console line is an error there, and `if pydist then` configs run on
both."""
from __future__ import annotations

from tests.conftest import Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query, run_cli

CONF = console_prelude(cache=100) + """
newServer({address="{backend}", pool="abuse", name="abuse1"})
addAction(QNameRule("blocked.test."), DropAction(), {name="block"})
addAction(makeRule("10.0.0.0/8"), PoolAction("abuse"), {name="tenner"})
if pydist then pydist.trace("config.test.") end
"""


def _console(proc, cmd: str) -> str:
    return run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd]).stdout


def test_trace_from_the_console_changes_nothing(start_proc: Starter, responder) -> None:
    proc = start_proc("pydist", CONF, {"backend": responder.address})
    assert query(proc.addr(), "cached.test.") is not None      # now in the cache
    before_rules = _console(proc, "showRules()")
    before_stats = _console(proc, "dumpStats()")
    sent = responder.count(".test.")      # health checks ask a.root-servers.net.

    out = _console(proc, 'pydist.trace("blocked.test.")')
    assert "query rule 0: name 'block'" in out and "qname==blocked.test.  ->  drop" in out
    assert out.rstrip().endswith("outcome: drop")

    out = _console(proc, 'pydist.trace("x.test.", "AAAA", {client="10.1.2.3", transport="tcp"})')
    assert "case: x.test. AAAA from 10.1.2.3 over tcp" in out
    assert "pool 'abuse', server abuse1" in out and "outcome: forward" in out

    out = _console(proc, 'pydist.trace("cached.test.")')
    assert "outcome: cache-hit" in out

    out = _console(proc, 'pydist.trace("x.test.", "A", {transport="smoke"})')
    assert out.startswith("Error: transport must be one of udp, tcp, dot, doh")

    assert responder.count(".test.") == sent                 # nothing was sent
    assert _console(proc, "showRules()") == before_rules       # match counters untouched
    after = _console(proc, "dumpStats()")
    for name in ("queries", "cache-hits", "cache-misses", "rule-drop", "responses"):
        assert _stat(after, name) == _stat(before_stats, name), name


def test_dnsdist_has_no_pydist_table(start_proc: Starter, responder) -> None:
    proc = start_proc("dnsdist", CONF, {"backend": responder.address})
    out = run_cli("dnsdist", ["-C", str(proc.conf), "-e", 'pydist.trace("a.test.")'])
    assert "attempt to index global 'pydist' (a nil value)" in out.stdout + out.stderr
    assert query(proc.addr(), "a.test.") is not None           # the `if pydist` config served


def _stat(text: str, name: str) -> str:
    words = text.split()
    return words[words.index(name) + 1]
