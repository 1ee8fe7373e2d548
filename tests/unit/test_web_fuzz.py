"""Garbage at the web server never escapes as an exception: every input either gets an
answer and a closed connection, or waits for more bytes (bounded by the head limit)."""
from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from luaapi.runtime import LuaConfig
from pydist.registry import CHECK, Registry
from pydist.web.server import WebConnection, WebServer
from tests.unit.test_web_server import FakeTransport

_cfg = LuaConfig(Registry(CHECK, log=lambda line: None))
_cfg.run_code('setWebserverConfig({apiKey="k", password="p"})', "c")
_loop = asyncio.new_event_loop()
_logs: list[str] = []
_server = WebServer(_loop, _cfg.registry, _cfg.registry.web, _logs.append)

REQUEST_PARTS = st.sampled_from([
    b"GET ", b"PUT ", b"OPTIONS ", b"/metrics", b"/api/v1/servers/localhost", b"/jsonstat?command=",
    b"stats", b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", b"Host: x\r\n", b"X-API-Key: k\r\n",
    b"Authorization: Basic dTpw\r\n", b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n",
    b"\r\n", b"\r\n\r\n", b"0\r\n\r\n", b"\x00", b"\xff", b":", b" ", b"%", b"?",
])


def feed(chunks: list[bytes]) -> FakeTransport:
    conn, t = WebConnection(_server), FakeTransport()
    conn.connection_made(t)
    for chunk in chunks:
        conn.data_received(chunk)
    conn.connection_lost(None)
    bugs = [line for line in _logs if line.startswith("Error while handling")]
    assert not bugs, bugs
    return t


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_random_bytes(chunks: list[bytes]) -> None:
    t = feed(chunks)
    assert t.out == b"" or t.out.startswith((b"HTTP/1.1 ", b"HTTP/1.0 "))
    assert _server.active == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(REQUEST_PARTS, max_size=25), st.integers(min_value=1, max_value=7))
def test_request_like_bytes(parts: list[bytes], cut: int) -> None:
    data = b"".join(parts)
    t = feed([data[i:i + cut] for i in range(0, len(data), cut)])
    if t.out:
        assert t.out.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")) and t.closed
    assert _server.active == 0
