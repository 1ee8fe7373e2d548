"""DelayAction on queries forwarded to a backend, pydist against real dnsdist 1.7.3: the
answer of a UDP query leaves only after the delay (with or without response rules, cached or
not), the answer of a TCP query at once; each side measured against the same bounds."""
from __future__ import annotations

import time

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import IMPLS, query

DELAY_MS = 600
CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
addAction("slow.test.", DelayAction(%d))
{extra}
""" % DELAY_MS


def _timed(proc, name: str, tcp: bool) -> str:
    start = time.monotonic()
    r = query(proc.addr(), name, tcp=tcp, timeout=3.0)
    took = time.monotonic() - start
    assert r is not None
    # generous bounds: the delay is the floor, scheduling on a busy machine adds to it
    return "delayed" if took >= DELAY_MS / 1000 * 0.9 else "at once" if took < 0.4 else \
        f"unclear {took:.3f}s"


def test_delay_action_on_forwarded_queries(start_proc: Starter,
                                           responder_factory: ResponderFactory) -> None:
    for extra in ("", 'addResponseAction(AllRule(), SetTagResponseAction("a", "b"))',
                  "pc = newPacketCache(100) getPool(''):setCache(pc)"):
        views = {}
        for impl in IMPLS:
            backend = responder_factory()
            proc = start_proc(impl, CONF, {"backend": backend.address, "extra": extra})
            views[impl] = [(name, tcp, _timed(proc, name, tcp))
                           for name in ("slow.test.", "fast.test.", "slow.test.")
                           for tcp in (False, True)]
            proc.stop()
        assert views["pydist"] == views["dnsdist"], extra
