"""EDNS Client Subnet for useClientSubnet servers, pydist against real dnsdist 1.7.3: what the
backend receives (echoed back in a TXT answer), the ECS steering actions and settings, and the
client's answer with what was added taken out again."""
from __future__ import annotations

import re

import dns.edns
import dns.message
import dnslib
import pytest

from tests.conftest import ResponderFactory, Starter, available_impls
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import poll_until, run_cli, send_message

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{ecs}", useClientSubnet=true})
newServer({address="{plain}", pool="plain"})
pc = newPacketCache(100)
getPool(""):setCache(pc)
addAction("plain.test.", PoolAction("plain"))
addAction("short.test.", SetECSPrefixLengthAction(16, 48))
addAction("off.test.", SetDisableECSAction())
addAction("over.test.", SetECSOverrideAction(true))
addAction("fixed.test.", SetECSAction("198.51.100.0/24", "2001:db8::/48"))
"""


def echo_ecs(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    """TXT answer saying what EDNS the backend got; its OPT (if any) echoed with the ECS."""
    r = q.reply()
    opts = [rr for rr in q.ar if rr.rtype == 41]
    seen = "no-edns"
    if opts:
        ecs = [o for o in opts[0].rdata if o.code == 8]
        seen = f"payload={opts[0].rclass} ecs=" + (ecs[0].data.hex() if ecs else "none")
        r.add_ar(dnslib.RR(rtype=41, rclass=1232, ttl=0, rdata=opts[0].rdata))
    r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.TXT, ttl=60, rdata=dnslib.TXT(seen)))
    return r


QUERIES = [  # (name, EDNS, client ECS)
    ("www.test.", False, None), ("www.test.", True, None), ("short.test.", True, None),
    ("off.test.", True, None), ("www.test.", True, "192.0.2.0/24"),
    ("over.test.", True, "192.0.2.0/24"), ("plain.test.", False, None),
    ("fixed.test.", True, None), ("fixed.test.", False, None),
]


def _ask(where: tuple[str, int], name: str, edns: bool, ecs: str | None, tcp: bool) -> tuple:
    options = [dns.edns.ECSOption.from_text(ecs)] if ecs else []
    q = dns.message.make_query(name, "TXT", use_edns=0 if edns else False, options=options)
    r = send_message(where, q, tcp, timeout=1.5)
    assert r is not None
    return ([str(x) for x in r.answer], r.edns, sorted(o.otype for o in r.options))


@pytest.mark.skipif(len(available_impls()) < 2, reason="dnsdist not installed")
def test_client_subnet_as_dnsdist(start_proc: Starter,
                                  responder_factory: ResponderFactory) -> None:
    ecs_backend, plain = responder_factory(echo_ecs), responder_factory(echo_ecs)
    views: dict[str, list] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, CONF, {"ecs": ecs_backend.address, "plain": plain.address})
        views[impl] = [(q, tcp, _ask(proc.addr(), *q, tcp)) for q in QUERIES
                       for tcp in (False, True) for _ in range(2)]       # the 2nd: a cache hit
        proc.stop()
    assert views["pydist"] == views["dnsdist"]
    first = views["pydist"][0][2]
    assert "ecs=0001180" in first[0][0] and first[1] == -1    # 127.0.0.0/24 sent, OPT removed


TEE = CONF + """
addAction(AllRule(), TeeAction("{tee}", true))
"""


def test_tee_action_adds_ecs_as_dnsdist(start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    """TeeAction(addr, true): the copy carries the ECS option a backend would get (prefix
    length, fixed subnet and override actions included); TCP queries are not copied."""
    seen = {}
    for impl in ("dnsdist", "pydist"):
        tee = responder_factory()
        proc = start_proc(impl, TEE, {"ecs": responder_factory(echo_ecs).address,
                                      "plain": responder_factory(echo_ecs).address,
                                      "tee": tee.address})
        for name, edns, ecs in QUERIES:
            _ask(proc.addr(), name, edns, ecs, False)
        _ask(proc.addr(), "tcp.test.", True, None, True)
        # every UDP query but plain.test.'s, whose PoolAction ends the chain before the tee
        poll_until(lambda: len(tee.raw) >= len(QUERIES) - 1, timeout=5)
        seen[impl] = [data[2:] for _, _, data in tee.raw]        # without the query ID
    assert seen["pydist"] == seen["dnsdist"]
    assert len(seen["pydist"]) == len(QUERIES) - 1
    assert b"\x00\x08" in seen["pydist"][0]                        # an ECS option was added


POOL_ECS = """
newServer({address="{backend}", useClientSubnet=true})
pc = newPacketCache(100)
getPool(""):setCache(pc)
getPool(""):setECS(POOLECS)
setServFailWhenNoServer(true)
"""


@pytest.mark.parametrize("pool_ecs", [True, False])
def test_pool_ecs_when_no_server_is_up(pool_ecs: bool, start_proc: Starter,
                                       responder_factory: ResponderFactory) -> None:
    """getPool():setECS(true): with no server to send to, the query still gets its ECS before
    the cache lookup, so an answer cached from a useClientSubnet server is found; without it
    the lookup misses and the query gets a ServFail."""
    seen = {}
    for impl in ("dnsdist", "pydist"):
        conf = console_prelude(backend=False) + POOL_ECS.replace("POOLECS", str(pool_ecs).lower())
        proc = start_proc(impl, conf, {"backend": responder_factory(echo_ecs).address})
        first = _ask(proc.addr(), "www.test.", True, None, False)
        run_cli(impl, ["-C", str(proc.conf), "-e", "getServer(0):setDown()"])
        later = [_ask(proc.addr(), "www.test.", edns, None, tcp)
                 for edns in (True, False) for tcp in (False, True)]
        # the TTLs age with the time each side's console took: left out
        seen[impl] = [([re.sub(r" \d+ IN ", " IN ", a) for a in answer], *rest)
                      for answer, *rest in [first] + later]
    assert seen["pydist"] == seen["dnsdist"]
    assert (seen["pydist"][1] == seen["pydist"][0]) is pool_ecs
