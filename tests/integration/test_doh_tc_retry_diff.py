"""DoH queries and UDP backends, pydist against real dnsdist 1.7.3: a TC=1 answer is asked
again over TCP and the DoH client gets the TCP answer; what the backend saw on each transport
is compared too."""
from __future__ import annotations

import dnslib

from tests.conftest import ResponderFactory, Starter
from tests.helpers.doh import b64, client, do, query_wire
from tests.helpers.pydist_proc import IMPLS

CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addDOHLocal("127.0.0.1:{portdoh}", nil, nil, {"/dns-query"})
newServer({address="{backend}"})
{extra}
"""


def tc_over_udp(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    """TC=1 and no records over UDP below big.test., the whole answer over TCP."""
    r = q.reply()
    if transport == "udp" and str(q.q.qname).endswith("big.test."):
        r.header.tc = 1
        return r
    r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.TXT, ttl=60, rdata=dnslib.TXT(transport)))
    return r


def test_doh_tc_answer_retried_over_tcp(start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    for extra in ("", "pc = newPacketCache(100) getPool(''):setCache(pc)"):
        views = {}
        for impl in IMPLS:
            backend = responder_factory(tc_over_udp)
            proc = start_proc(impl, CONF, {"backend": backend.address, "extra": extra})
            base = f"http://127.0.0.1:{proc.addr('portdoh')[1]}"
            out = []
            with client(False) as c:
                for name, edns in (("a.big.test.", False), ("b.big.test.", True),
                                   ("small.test.", False), ("a.big.test.", False)):
                    out.append(do(c, base, "GET", "/dns-query?dns="
                                  + b64(query_wire(name, "TXT", edns))).summary())
            out.append(sorted((n, t) for n, t, _ in backend.queries if n.endswith(".test.")))
            views[impl] = out
            proc.stop()
        for mine, theirs in zip(views["pydist"], views["dnsdist"], strict=True):
            assert mine == theirs, extra
