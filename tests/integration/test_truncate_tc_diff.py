"""truncateTC(true), pydist against real dnsdist 1.7.3: a TC=1 answer from a UDP backend loses
its records before it reaches the client (and the cache); without the setting it is relayed as
it came. Compared byte for byte (the ID aside), with and without EDNS in the query."""
from __future__ import annotations

import dns.message
import dnslib

from tests.conftest import ResponderFactory, Starter
from tests.helpers.sides import assert_same, views_of_both
from tests.integration.test_ecs_proxy_diff import exchange

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
{extra}
pc = newPacketCache(100)
getPool(""):setCache(pc)
"""


def truncated(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    """TC=1 over UDP with an answer, an authority record and the query's OPT echoed."""
    r = q.reply()
    r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.A, ttl=60, rdata=dnslib.A("192.0.2.1")))
    if transport == "udp":
        r.header.tc = 1
        r.add_auth(dnslib.RR("test.", dnslib.QTYPE.NS, ttl=60, rdata=dnslib.NS("ns.test.")))
        for opt in (rr for rr in q.ar if rr.rtype == 41):
            r.add_ar(dnslib.RR(rtype=41, rclass=1400, ttl=opt.ttl, rdata=opt.rdata))
    return r


QUERIES = [  # (name, EDNS, DO)
    ("plain.test.", False, False), ("edns.test.", True, False), ("do.test.", True, True),
]


def _run(proc) -> list:
    out = []
    for name, edns, do in QUERIES:
        for _ in range(2):                      # the second one from the cache
            q = dns.message.make_query(name, "A", use_edns=0 if edns else False,
                                       want_dnssec=do, payload=1232)
            r, _ = exchange(proc.addr(), q.to_wire())
            out.append((name, edns, do, r[2:].hex()))
    return out


def test_truncate_tc_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory) -> None:
    for extra in ("truncateTC(true)", "truncateTC(true) setAddEDNSToSelfGeneratedResponses(false)",
                  ""):
        assert_same(views_of_both(start_proc, CONF, lambda: {
            "backend": responder_factory(truncated).address, "extra": extra}, _run), extra)
