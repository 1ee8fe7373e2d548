"""TeeAction, pydist against real dnsdist 1.7.3: the copy with addECS (the client's subnet
added as for a useClientSubnet server, a client's own ECS kept) and without, and the counters
`printStats()` prints once the copies' answers are in."""
from __future__ import annotations

import dns.edns
import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import poll_until, run_cli, send_message
from tests.helpers.sides import assert_same, views_of_both
from tests.helpers.conf import console_prelude

CONF = console_prelude() + """ecs = TeeAction("{tee1}", true)
plain = TeeAction("{tee2}")
addAction("short.test.", SetECSPrefixLengthAction(16, 48))
addAction(AllRule(), ecs)
addAction(AllRule(), plain)
"""
QUERIES = [("a.test.", {}, False), ("x.nx.test.", {}, False), ("short.test.", {}, False),
           ("e.test.", {"use_edns": 0, "options": [dns.edns.ECSOption.from_text("10.0.0.0/8")]},
            False), ("d.test.", {"use_edns": 0, "want_dnssec": True}, False),
           ("t.test.", {}, True)]


def _run(proc, tees) -> list:
    for name, kw, tcp in QUERIES:
        assert send_message(proc.addr(), dns.message.make_query(name, "A", **kw), tcp) is not None

    def stats() -> str | None:
        out = run_cli(proc.impl, ["-C", str(proc.conf), "-e",
                                  "ecs:printStats() plain:printStats()"]).stdout
        return out if out.count("responses\t5\n") == 2 else None
    printed = poll_until(stats, timeout=5)
    return [printed] + [sorted(d[2:].hex() for _, _, d in t.raw) for t in tees]


def test_tee_action_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory) -> None:
    tees: list = []

    def values() -> dict[str, object]:
        tees[:] = [responder_factory(), responder_factory()]
        return {"backend": responder_factory().address, "tee1": tees[0].address,
                "tee2": tees[1].address}
    assert_same(views_of_both(start_proc, CONF, values, lambda proc: _run(proc, tees)))
