"""TCP towards backends, on pydist and real dnsdist 1.7.3: TC=1 UDP answers passed through,
TCP queries forwarded over TCP on reused connections, tcpOnly servers."""
from __future__ import annotations

import socket
import threading
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


def wrong_id_over_tcp(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    r = default_handler()(q, transport)
    if transport == "tcp":
        r.header.id = q.header.id ^ 0x1111
    return r


@pytest.mark.parametrize("impl", BOTH)
def test_tcp_answer_with_a_wrong_id_is_not_relayed(impl: str, start_proc: Starter,
                                                   responder_factory: ResponderFactory) -> None:
    """An answer matching no query in flight ends the exchange: no answer, no retry."""
    b = responder_factory(wrong_id_over_tcp)
    proc = start_proc(impl, CONF % ", retries=3", {"b0": b.address})
    assert query(proc.addr(), "w.id.test.", tcp=True, timeout=3) is None
    assert b.count("w.id.test.") == 1
    assert query(proc.addr(), "u.id.test.") is not None      # UDP unaffected


class ReversingBackend:
    """A TCP backend that waits for two queries on one connection and answers the second first."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                queries = [_read_frame(conn) for _ in range(2)]
            except OSError:
                return
            if not all(len(q) >= 12 for q in queries):
                return
            for q in reversed(queries):
                r = default_handler()(dnslib.DNSRecord.parse(q), "tcp").pack()
                conn.sendall(len(r).to_bytes(2, "big") + r)
            time.sleep(0.5)

    def close(self) -> None:
        self.sock.close()


def _read_frame(conn: socket.socket) -> bytes:
    head = conn.recv(2, socket.MSG_WAITALL)
    return conn.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)


OUT_OF_ORDER = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="127.0.0.1:{b0}", maxInFlight=2, tcpOnly=true}):setUp()
"""


def test_out_of_order_tcp_answers_matched_by_id(start_proc: Starter) -> None:
    """With maxInFlight=2 two queries share one backend connection and each client gets its
    own answer although the backend answers the second one first. (pydist only: dnsdist
    1.7.3 multiplexes a backend connection only for one client's pipelined queries, with a
    frontend maxInFlight that pydist's frontend does not offer.)"""
    backend = ReversingBackend()
    try:
        proc = start_proc("pydist", OUT_OF_ORDER, {"b0": backend.port}, ready="Console ACL")
        results: dict[str, object] = {}

        def ask(name: str, qid: int) -> None:
            results[name] = query(proc.addr(), name, tcp=True, qid=qid, timeout=4)
        threads = [threading.Thread(target=ask, args=(f"o{i}.order.test.", 100 + i))
                   for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(6)
        for i in range(2):
            resp = results[f"o{i}.order.test."]
            assert resp is not None and resp.id == 100 + i
            assert str(resp.question[0].name) == f"o{i}.order.test."
        assert backend.connections == 1
    finally:
        backend.close()


class ClosingBackend:
    """A TCP backend that reads a query and closes the connection without answering."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    if conn.recv(4096):
                        self.queries += 1
                except OSError:
                    pass


RETRIES = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="127.0.0.1:{b0}", retries=%d}):setUp()
"""


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("retries,attempts", [(0, 1), (1, 1), (3, 3)])
def test_tcp_retries_when_the_backend_closes(impl: str, retries: int, attempts: int,
                                             start_proc: Starter) -> None:
    """`retries` is the number of attempts (at least one), each on a new connection."""
    backend = ClosingBackend()
    try:
        proc = start_proc(impl, RETRIES % retries, {"b0": backend.port}, ready="Console ACL")
        assert query(proc.addr(), "c.retry.test.", tcp=True, timeout=4) is None
        poll_until(lambda: backend.queries >= attempts)
        assert query(proc.addr(), "d.retry.test.", tcp=True, timeout=4) is None
        poll_until(lambda: backend.queries >= 2 * attempts)
        assert backend.queries == 2 * attempts
    finally:
        backend.sock.close()
