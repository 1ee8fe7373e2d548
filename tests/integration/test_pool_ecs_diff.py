"""`getPool(...):setECS(true)` with no server of the pool up, pydist against real dnsdist
1.7.3: the pool's flag stands for the missing server's useClientSubnet, so the cache is asked
with the ECS key and an answer cached through a useClientSubnet server is still served (without
the flag: no server, no answer). Answers and cache counters compared."""
from __future__ import annotations

import re

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import query, run_cli
from tests.helpers.sides import assert_same, views_of_both
from tests.integration.test_ecs_diff import echo_ecs

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=")
newServer({address="{backend}", useClientSubnet=true, pool="p"})
pc = newPacketCache(100)
getPool("p"):setCache(pc)
getPool("p"):setECS({ecs})
setServFailWhenNoServer(true)
addAction(AllRule(), PoolAction("p"))
"""


def _records(r) -> list:
    """The answer records without their TTLs (a cache hit ages them)."""
    return [(str(x.name), x.rdtype, sorted(rd.to_text() for rd in x)) for x in r.answer]


def _run(proc) -> list:
    out = []
    first = query(proc.addr(), "www.test.", "TXT", use_edns=0)
    assert first is not None
    out.append(_records(first))
    run_cli(proc.impl, ["-C", str(proc.conf), "-e", "getServer(0):setDown()"])
    for name, tcp in (("www.test.", False), ("www.test.", True), ("other.test.", False)):
        r = query(proc.addr(), name, "TXT", tcp=tcp, use_edns=0)
        out.append(None if r is None else (r.rcode(), _records(r)))
    stats = run_cli(proc.impl, ["-C", str(proc.conf), "-e", "pc:printStats()"]).stdout
    out.append(re.findall(r"(Entries|Hits|Misses): (\S+)", stats))
    return out


def test_pool_ecs_without_servers_as_dnsdist(start_proc: Starter,
                                            responder_factory: ResponderFactory) -> None:
    for ecs in ("true", "false"):
        assert_same(views_of_both(start_proc, CONF, lambda: {
            "backend": responder_factory(echo_ecs).address, "ecs": ecs}, _run), ecs)
