"""TCP towards backends, on pydist and real dnsdist 1.7.3: TC=1 UDP answers passed through,
TCP queries forwarded over TCP on reused connections, tcpOnly servers."""
from __future__ import annotations

import socket
import time

import dns.message
import dns.query
import dnslib
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.pydist_proc import poll_until, query
from tests.helpers.responder import default_handler

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{b0}"%s})
"""


def truncating(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    """TC=1 and no answer over UDP (health checks still pass), the full answer over TCP."""
    if transport == "udp" and str(q.q.qname) != "a.root-servers.net.":
        r = q.reply()
        r.header.tc = 1
        return r
    return default_handler()(q, transport)


@pytest.mark.parametrize("impl", BOTH)
def test_truncated_udp_answer_reaches_the_client(impl: str, start_proc: Starter,
                                                 responder_factory: ResponderFactory) -> None:
    b = responder_factory(truncating)
    proc = start_proc(impl, CONF % "", {"b0": b.address})
    resp = query(proc.addr(), "big.tc.test.", qid=4321)
    assert resp is not None and resp.id == 4321
    assert resp.flags & 0x0200                                 # TC passed through as is
    assert not resp.answer
    full = query(proc.addr(), "big.tc.test.", tcp=True)        # the client retries over TCP
    assert full is not None and not full.flags & 0x0200 and full.answer
    assert b.count("big.tc.test.") == 2


@pytest.mark.parametrize("impl", BOTH)
def test_tcp_queries_reuse_one_backend_connection(impl: str, start_proc: Starter,
                                                  responder_factory: ResponderFactory) -> None:
    """Queries of one client connection share one backend connection. (Across client
    connections dnsdist 1.7.3 opens a new one each time; pydist keeps reusing its idle ones.)"""
    b = responder_factory()
    proc = start_proc(impl, CONF % "", {"b0": b.address})
    with socket.create_connection(proc.addr(), timeout=2) as s:
        for i in range(5):
            dns.query.send_tcp(s, dns.message.make_query(f"r{i}.reuse.test.", "TXT"))
            resp, _ = dns.query.receive_tcp(s, expiration=time.time() + 2)
            assert resp.answer[0][0].strings[0] == b"tcp"
    assert b.count(".reuse.test.") == 5
    assert b.tcp_connections == 1
    assert query(proc.addr(), "again.reuse.test.", tcp=True) is not None
    assert 1 <= b.tcp_connections <= 2


@pytest.mark.parametrize("impl", BOTH)
def test_tcp_only_server_gets_udp_queries_over_tcp(impl: str, start_proc: Starter,
                                                   responder_factory: ResponderFactory) -> None:
    b = responder_factory()
    proc = start_proc(impl, CONF % ", tcpOnly=true", {"b0": b.address})
    resp = query(proc.addr(), "t.only.test.", "TXT")
    assert resp is not None and resp.answer[0][0].strings[0] == b"tcp"
    poll_until(lambda: b.tcp_connections >= 1)
