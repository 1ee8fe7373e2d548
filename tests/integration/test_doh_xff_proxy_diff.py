"""DoH with trustForwardedForHeader towards a useProxyProtocol backend, pydist against real
dnsdist 1.7.3: a client address from X-Forwarded-For of the listener's family goes into the
proxy protocol header; one of the other family cannot share a header with the listener's
address, and dnsdist drops the query with a 502 (the HTTP answers and the headers the backend
got compared)."""
from __future__ import annotations

from tests.conftest import ResponderFactory, Starter
from tests.helpers.doh import b64, client, do, query_wire
from tests.helpers.pydist_proc import IMPLS

CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addDOHLocal("127.0.0.1:{portdoh}", nil, nil, {"/dns-query"}, {trustForwardedForHeader=true})
newServer({address="{backend}", useProxyProtocol=true})
setACL({"0.0.0.0/0", "::/0"})
"""
FORWARDED = ("192.0.2.7", "2001:db8::7", "[2001:db8::8]:53", "192.0.2.9:5353", "::ffff:192.0.2.10")


def test_forwarded_for_family_and_proxy_protocol(start_proc: Starter,
                                                 responder_factory: ResponderFactory) -> None:
    views = {}
    for impl in IMPLS:
        backend = responder_factory()
        proc = start_proc(impl, CONF, {"backend": backend.address})
        base = f"http://127.0.0.1:{proc.addr('portdoh')[1]}"
        out = []
        with client(False) as c:
            for i, xff in enumerate(FORWARDED):
                out.append(do(c, base, "GET", "/dns-query?dns=" + b64(query_wire(
                    f"q{i}.test.")), headers={"X-Forwarded-For": xff}).summary())
        got = [(transport, p["tcp"], p["source"], p["destination"][0])   # the header says TCP
               for transport, p, _ in backend.proxied() if p and p.get("source")]
        out.append(sorted(str(g) for g in got))
        views[impl] = out
        proc.stop()
    for mine, theirs in zip(views["pydist"], views["dnsdist"], strict=True):
        assert mine == theirs
