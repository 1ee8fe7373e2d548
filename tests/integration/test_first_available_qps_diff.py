"""firstAvailable with a `qps=` server and a packet cache, pydist against real dnsdist 1.7.3:
which server each miss goes to after a burst of cache hits (hits do not spend the first
server's QPS tokens; only queries sent to it do)."""
from __future__ import annotations

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import IMPLS, query
from tests.helpers.responder import default_handler

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setServerPolicy(firstAvailable)
newServer({address="{first}", qps=3, order=1})
newServer({address="{second}", order=2})
{cache}
"""


def _who(proc, name: str) -> str:
    r = query(proc.addr(), name)
    assert r is not None and r.answer
    return {"192.0.2.1": "first", "192.0.2.2": "second"}[r.answer[0][0].address]


def test_cache_hits_spend_no_qps_tokens(start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    for cache in ("pc = newPacketCache(100) getPool(''):setCache(pc)", ""):
        views = {}
        for impl in IMPLS:
            first = responder_factory(default_handler(address="192.0.2.1"))
            second = responder_factory(default_handler(address="192.0.2.2"))
            proc = start_proc(impl, CONF, {"first": first.address, "second": second.address,
                                           "cache": cache})
            # 3 tokens: a miss, 6 hits, 2 more misses; had the hits spent tokens, b and c would
            # go to the second server (tokens only come back with time, so load cannot make
            # the first server's answers wrong; what comes after the tokens would depend on it)
            views[impl] = [_who(proc, "a.test.")] + [_who(proc, "a.test.") for _ in range(6)] \
                + [_who(proc, f"{n}.test.") for n in ("b", "c")]
            proc.stop()
        assert views["pydist"] == views["dnsdist"], cache
