"""The web server's protocol class with a fake transport (no sockets): one request per
connection, chunked answers, requests without Host, limits, ACL and concurrency on accept."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from luaapi.runtime import LuaConfig
from pydist.registry import CHECK, Registry
from pydist.web.server import MAX_BODY, MAX_HEAD, WebConnection, WebServer


class FakeTransport:
    def __init__(self, peer: str = "127.0.0.1") -> None:
        self.peer = peer
        self.out = b""
        self.closed = False
        self.aborted = False

    def get_extra_info(self, name: str) -> tuple[str, int]:
        return (self.peer, 40000)

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True


@pytest.fixture
def server() -> Iterator[WebServer]:
    cfg = LuaConfig(Registry(CHECK, log=lambda line: None))
    cfg.run_code('setWebserverConfig({apiKey="k", maxConcurrentConnections=2})', "c")
    loop = asyncio.new_event_loop()
    try:
        yield WebServer(loop, cfg.registry, cfg.registry.web, lambda line: None)
    finally:
        loop.close()


def connect(server: WebServer, peer: str = "127.0.0.1") -> tuple[WebConnection, FakeTransport]:
    conn, t = WebConnection(server), FakeTransport(peer)
    conn.connection_made(t)
    return conn, t


def test_one_request_per_connection_chunked(server: WebServer) -> None:
    conn, t = connect(server)
    conn.data_received(b"GET /jsonstat?command=stats HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\n\r\n"
                       b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\n\r\n")
    head, _, body = t.out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and t.closed
    assert b"transfer-encoding: chunked" in head.lower() and b"connection: close" in head.lower()
    assert t.out.count(b"HTTP/1.1") == 1 and b"dnsdist_" not in t.out
    assert body.endswith(b"0\r\n\r\n")
    conn.connection_lost(None)
    assert server.active == 0


def test_request_without_host_is_answered(server: WebServer) -> None:
    conn, t = connect(server)
    conn.data_received(b"GET /jsonstat?command=stats HTTP/1.1\r\nX-API-Key: k\r\n")
    assert t.out == b""
    conn.data_received(b"\r\n")
    assert t.out.startswith(b"HTTP/1.1 200 OK\r\n") and b'"queries": 0' in t.out


def test_limits(server: WebServer) -> None:
    conn, t = connect(server)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * (MAX_HEAD + 10))
    assert t.out.startswith(b"HTTP/1.0 431 ") and t.closed
    conn.connection_lost(None)
    conn, t = connect(server)
    conn.data_received(b"PUT /api/v1/servers/localhost/config/allow-from HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 100) + b"x" * (MAX_BODY + 100))
    assert b" 413 " in t.out.split(b"\r\n")[0] and t.closed
    conn.connection_lost(None)
    conn, t = connect(server)
    conn.data_received(b"\x00\x01garbage\r\n\r\n")
    assert t.out.startswith(b"HTTP/1.0 400 ") and t.closed


def test_acl_and_concurrency_on_accept(server: WebServer) -> None:
    _, t = connect(server, "192.0.2.1")
    assert t.aborted and t.out == b"" and server.active == 0
    c1, t1 = connect(server)
    c2, t2 = connect(server, "::1")
    _, t3 = connect(server)
    assert not t1.closed and not t2.closed and t3.aborted and server.active == 2
    c1.connection_lost(None)
    _, t4 = connect(server, "::ffff:127.0.0.1")
    assert not t4.aborted and server.active == 2


def test_http10_is_answered_in_http10_until_close(server: WebServer) -> None:
    conn, t = connect(server)
    conn.data_received(b"GET /jsonstat?command=nope HTTP/1.0\r\nX-API-Key: k\r\n\r\n")
    head = t.out.split(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.0 404 Not Found\r\n") and t.closed
    assert b"transfer-encoding" not in head.lower()
