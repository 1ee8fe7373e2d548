"""Cache hits over plain TCP on pydist and real dnsdist 1.7.3: pipelined hits on one
connection (pydist answers them from the exact-bytes level and writes them together) give the
same answers, in order, with each query's ID and name case, and the same counters."""
from __future__ import annotations

import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.pipeline import connect, framed, read_answers
from tests.helpers.pydist_proc import run_cli
from tests.helpers.responder import default_handler

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
newServer{address="{backend}"}
pc = newPacketCache(100, {maxTTL=86400})
getPool(""):setCache(pc)
""".replace("KEY", KEY)
COUNTERS = ("queries", "cache-hits", "cache-misses", "responses", "rdqueries",
            "frontend-noerror", "latency0-1")


def _counters(proc) -> list[int]:
    expr = "..','..".join(f'getStatisticsCounters()["{n}"]' for n in COUNTERS)
    out = run_cli(proc.impl, ["-C", str(proc.conf), "-e", expr]).stdout
    return [int(float(v)) for v in out.strip().split(",")]


@pytest.mark.parametrize("impl", BOTH)
def test_pipelined_tcp_hits_answers_and_counters(impl: str, start_proc: Starter,
                                                 responder_factory: ResponderFactory) -> None:
    backend = responder_factory(default_handler())
    proc = start_proc(impl, CONF, {"backend": backend.address})
    with connect(proc.addr()) as s:            # two misses fill the cache (TCP entries)
        s.sendall(framed("hit.tcp.test.", 1) + framed("other.tcp.test.", 2))
        first, _ = read_answers(s, 2, timeout=5)
    assert [m.id for m in first] == [1, 2]
    names = ["hit.tcp.test.", "other.tcp.test.", "hit.tcp.test.", "HIT.tcp.test.",
             "hit.tcp.test.", "other.tcp.test."]
    with connect(proc.addr()) as s:
        s.sendall(b"".join(framed(n, 100 + i) for i, n in enumerate(names)))
        answers, closed = read_answers(s, len(names), timeout=5)
    assert not closed
    assert [m.id for m in answers] == [100 + i for i in range(len(names))]
    assert [str(m.question[0].name) for m in answers] == names
    rdata = {str(m.question[0].name): sorted(r.to_text() for r in m.answer[0]) for m in first}
    assert [sorted(r.to_text() for r in m.answer[0]) for m in answers] == \
        [rdata[n.lower()] for n in names]
    # as 1.7.3: 8 queries, 2 misses answered (responses), 6 hits (not frontend responses)
    assert _counters(proc) == [8, 6, 2, 2, 8, 8, 6]
