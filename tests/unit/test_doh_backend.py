"""The DoH backend's HTTP/2 side without sockets: a DoHConnection on a fake transport, paired
with an h2 server in memory. Streams, retries, counters, and bytes that are not HTTP/2."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.errors
import h2.connection
import h2.events
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydist.backend.doh import DoHBackendPool, DoHConnection, _Stream
from pydist.backend.server import DownstreamState
from pydist.compare.dohresponder import GARBAGE
from pydist.compare.responder import build_answer
from tests.helpers.doh import query_wire


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True


class FakeTLS:
    def keep_session(self, transport: Any) -> None:
        pass


class Server:
    """The upstream's side of one connection: requests read, answers written."""

    def __init__(self, conn: DoHConnection) -> None:
        self.conn = conn
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.h2.initiate_connection()
        self.requests: dict[int, tuple[list, bytes]] = {}
        self.headers: dict[int, list] = {}

    def pump(self) -> None:
        """Client -> server, then server -> client."""
        data = bytes(self.conn.transport.out)
        self.conn.transport.out.clear()
        for ev in self.h2.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                self.headers[ev.stream_id] = ev.headers
                self.requests[ev.stream_id] = (ev.headers, b"")
            elif isinstance(ev, h2.events.DataReceived):
                h, b = self.requests[ev.stream_id]
                self.requests[ev.stream_id] = (h, b + ev.data)
        self.send(b"")

    def send(self, raw: bytes) -> None:
        out = self.h2.data_to_send() + raw
        if out:
            self.conn.data_received(out)

    def answer(self, sid: int, status: int = 200, body: bytes | None = None,
               length: int | None = None) -> None:
        body = build_answer(self.requests[sid][1], 0) if body is None else body
        self.h2.send_headers(sid, [(":status", str(status)),
                                   ("content-length", str(len(body) if length is None else length))])
        self.h2.send_data(sid, body, end_stream=True)
        self.send(b"")


@pytest.fixture
def pool() -> Iterator[DoHBackendPool]:
    loop = asyncio.new_event_loop()
    server = DownstreamState("192.0.2.1", 443, {"tls": "openssl", "dohPath": "/dns-query",
                                                "subjectName": "doh.test", "retries": 2})
    server.tls = FakeTLS()
    p = DoHBackendPool(loop, server, lambda line: None)
    p.made = []         # type: ignore[attr-defined]

    def connect(proxy: bytes = b"", health: bool = False) -> DoHConnection:
        conn = DoHConnection(p, proxy, health)
        if not proxy and not health:
            p.conns.append(conn)
        conn.connection_made(FakeTransport())
        p.made.append(Server(conn))      # type: ignore[attr-defined]
        return conn
    p.connect = connect                  # type: ignore[method-assign]
    yield p
    loop.close()


def ask(pool: DoHBackendPool, name: str) -> list:
    got: list = []
    pool.query(query_wire(name), got.append)
    return got


def test_queries_in_flight_together_are_streams_of_one_connection(pool) -> None:
    a, b = ask(pool, "a.example."), ask(pool, "b.example.")
    (srv,) = pool.made
    srv.pump()
    assert sorted(srv.requests) == [1, 3]
    headers = dict(srv.headers[1])
    assert headers[b":authority"] == b"doh.test" and headers[b":path"] == b"/dns-query"
    srv.answer(3)
    srv.answer(1)
    assert len(a[0]) == len(build_answer(query_wire("a.example."), 0)) and len(b) == 1
    assert pool.server.tcp["tcpReusedConnections"] == 1


def test_non_200_and_short_bodies_are_dropped_and_counted_nowhere(pool) -> None:
    a, b = ask(pool, "a.example."), ask(pool, "b.example.")
    (srv,) = pool.made
    srv.pump()
    srv.answer(1, status=502)
    srv.answer(3, body=b"\x01\x02\x03")
    assert a == [None] and b == [None]
    assert not any(pool.server.tcp[k] for k in ("tcpDiedReadingResponse", "tcpReadTimeouts"))


def test_body_shorter_than_its_length_is_a_stream_error_tried_again_elsewhere(pool) -> None:
    got = ask(pool, "a.example.")
    first = pool.made[0]
    first.pump()
    answer = build_answer(first.requests[1][1], 0)
    first.answer(1, body=answer[:20], length=len(answer))
    assert pool.server.tcp["tcpDiedReadingResponse"] == 1 and got == []
    assert first.conn.dead and len(pool.made) == 2
    second = pool.made[1]
    second.pump()
    second.answer(1)            # the retry starts its answer afresh
    assert len(got) == 1 and len(got[0]) == len(answer)


def test_stream_errors_give_up_after_retries(pool) -> None:
    got = ask(pool, "a.example.")
    for i in range(3):              # the first attempt and retries=2
        srv = pool.made[i]
        srv.pump()
        srv.h2.reset_stream(1, h2.errors.ErrorCodes.INTERNAL_ERROR)
        srv.send(b"")
    assert got == [None] and len(pool.made) == 3
    assert pool.server.tcp["tcpDiedReadingResponse"] == 3


def test_garbage_ends_the_session_and_the_close_fails_its_queries(pool) -> None:
    got = ask(pool, "a.example.")
    (srv,) = pool.made
    srv.pump()
    srv.send(GARBAGE)
    conn = srv.conn
    assert conn.dead and got == []
    events = srv.h2.receive_data(bytes(conn.transport.out))
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)     # a GOAWAY
    assert ask(pool, "b.example.") == [] and len(pool.made) == 2   # not reused
    conn.connection_lost(None)
    assert got == [None] and pool.server.tcp["tcpDiedReadingResponse"] == 1


def test_silence_is_a_read_timeout(pool) -> None:
    got = ask(pool, "a.example.")
    conn = pool.made[0].conn
    assert conn.timer is not None
    conn.timer.cancel()
    conn._timed_out()
    assert got == [None] and conn.closed and pool.server.tcp["tcpReadTimeouts"] == 1


def test_x_forwarded_headers(pool) -> None:
    got: list = []
    pool.query(query_wire("a.example."), got.append, origin=("192.0.2.9", 4242, b"dns-over-tcp"))
    srv = pool.made[0]
    srv.pump()
    assert srv.headers[1][-3:] == [(b"x-forwarded-for", b"192.0.2.9"),
                                   (b"x-forwarded-port", b"4242"),
                                   (b"x-forwarded-proto", b"dns-over-tcp")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_any_bytes_from_the_server_never_raise(chunks: list[bytes]) -> None:
    loop = asyncio.new_event_loop()
    try:
        server = DownstreamState("192.0.2.1", 443, {"tls": "openssl", "dohPath": "/q"})
        server.tls = FakeTLS()
        p = DoHBackendPool(loop, server, lambda line: None)
        conn = DoHConnection(p)
        conn.connection_made(FakeTransport())
        conn.send(_Stream(query_wire("a.example."), lambda r: None, None))
        for chunk in chunks:
            conn.data_received(chunk)
        conn.connection_lost(None)
    finally:
        loop.close()
