"""A reload that only adds a rule, compared with what a dnsdist operator does instead: type
the rule on dnsdist's console (dnsdist 1.7.3 cannot reload; SIGHUP ends it). The cache, its
counters and the rule's effect must come out the same as on the running dnsdist."""
from __future__ import annotations

import dns.rcode

from tests.conftest import Starter
from tests.helpers.pydist_proc import IMPLS, query
from tests.helpers.reload import CONSOLE, console, dump_stats, reload_by_signal
from tests.helpers.responder import Responder

BASE = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
""" + CONSOLE + """
newServer({address="{backend}"})
pc = newPacketCache(1000, {maxTTL=300})
getPool(""):setCache(pc)
"""
RULE = 'addAction("blocked.example.", RCodeAction(DNSRCode.REFUSED))'


def _observe(impl: str, start_proc: Starter, responder_factory: object) -> dict[str, object]:
    backend: Responder = responder_factory()  # type: ignore[operator]
    proc = start_proc(impl, BASE, {"backend": backend.address})
    for _ in range(3):
        assert query(proc.addr(), "cached.example.") is not None
    before = dump_stats(proc)
    if impl == "pydist":
        line = reload_by_signal(proc, proc.conf_text + RULE + "\n")
        assert "Configuration reloaded" in line, line
    else:
        console(proc, RULE)
    again = query(proc.addr(), "cached.example.")
    blocked = query(proc.addr(), "blocked.example.")
    after = dump_stats(proc)
    assert again is not None and blocked is not None
    return {"hits": (before["cache-hits"], after["cache-hits"]),
            "misses": (before["cache-misses"], after["cache-misses"]),
            "backend": backend.count("cached.example."),
            "blocked": dns.rcode.to_text(blocked.rcode()),
            "answer": [str(rr) for rr in again.answer[0]],
            "rules": after["rule-refused"]}


def test_rule_only_reload_keeps_cache_as_dnsdist_console(start_proc: Starter,
                                                        responder_factory: object) -> None:
    """The query cached before the change is still a hit and the hit counter keeps counting
    (2 -> 3), the backend saw the name once, the new rule answers REFUSED: as dnsdist."""
    seen = {impl: _observe(impl, start_proc, responder_factory) for impl in IMPLS}
    assert seen["pydist"] == seen["dnsdist"]
    assert seen["pydist"]["hits"] == (2.0, 3.0)
    assert seen["pydist"]["backend"] == 1
    assert seen["pydist"]["blocked"] == "REFUSED"


def test_sighup_ends_dnsdist_and_reloads_pydist(start_proc: Starter, responder: Responder
                                                ) -> None:
    """The one deliberate difference: dnsdist 1.7.3 has no SIGHUP handler and dies of it
    (silently); pydist reloads, says so, and goes on answering."""
    import os
    import signal
    for impl in IMPLS:
        proc = start_proc(impl, BASE, {"backend": responder.address})
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGHUP)
        if impl == "dnsdist":
            assert proc.wait_exit(10) == -signal.SIGHUP
        else:
            proc.wait_for("Received SIGHUP, reloading the configuration")
            proc.wait_for("Configuration reloaded")
            assert proc.alive() and query(proc.addr(), "still.example.") is not None
