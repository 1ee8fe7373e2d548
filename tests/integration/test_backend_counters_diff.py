"""Outgoing TCP and DoT counters against real dnsdist 1.7.3 (issue 15): one client connection
carrying five queries to a DoT backend opens one backend connection and reuses it four times;
the health checks' own TLS connections never count in tlsResumptions, and the first query
connection is a full handshake (no resumption counted)."""
from __future__ import annotations

import socket
import time

import dns.message
import dns.query
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.dot import CertSet
from tests.helpers.pydist_proc import DnsdistProcess, poll_until
from tests.integration.test_dot_backend import HEAD, backend_row, certs, dot_server, start_upstream

__all__ = ["certs"]   # the fixture, shared with test_dot_backend


def five_queries_on_one_connection(proc: DnsdistProcess, tag: str) -> None:
    with socket.create_connection(proc.addr(), timeout=5) as s:
        for i in range(5):
            dns.query.send_tcp(s, dns.message.make_query(f"{tag}{i}.example.", "A"))
            answer, _ = dns.query.receive_tcp(s, expiration=time.time() + 5)
            assert answer.answer, answer


@pytest.mark.parametrize("impl", BOTH)
def test_dot_backend_reuse_and_resumption_counters(impl: str, start_proc: Starter, responder,
                                                   certs: CertSet) -> None:
    up = start_upstream(start_proc, certs, responder.address)
    proc = start_proc(impl, HEAD + dot_server(f"127.0.0.1:{up.values['portdot']}", certs, "dot",
                                              ", checkInterval=1"))
    # a few health checks over TLS first (each one a new TLS connection, forwarded by the
    # DoT upstream to the responder)
    poll_until(lambda: responder.count("a.root-servers.net.") >= 3, timeout=8)
    assert backend_row(proc, "dot") == {"total": 0, "reused": 0, "resumptions": 0}
    five_queries_on_one_connection(proc, "a")
    assert backend_row(proc, "dot") == {"total": 1, "reused": 4, "resumptions": 0}


@pytest.mark.parametrize("impl", BOTH)
def test_tcp_backend_reuse_counter(impl: str, start_proc: Starter, responder) -> None:
    proc = start_proc(impl, HEAD + f'newServer{{address="{responder.address}", tcpOnly=true, '
                                   'name="tcp"}\n')
    five_queries_on_one_connection(proc, "t")
    assert backend_row(proc, "tcp") == {"total": 1, "reused": 4, "resumptions": 0}
