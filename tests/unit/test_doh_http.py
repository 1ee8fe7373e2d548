"""The DoH frontend's HTTP side without sockets: the dns= parameter, path routing, the OPT RR
taken off, HTTP/1 framing (pipelining, keep-alive, garbage) and HTTP/2 streams (h2 client)."""
from __future__ import annotations

import asyncio
import types
from typing import Any

import dns.message
import h2.config
import h2.connection
import h2.events
import pytest

from pydist.frontend.doh import (
    DOHFrontend,
    DOHRequest,
    decode_dns_param,
    min_ttl,
    strip_opt,
)
from pydist.frontend.doh_http import H1_GARBAGE, DOHConnection


def test_dns_parameter_is_base64url_with_or_without_padding() -> None:
    wire = dns.message.make_query("example.com.", "A").to_wire()
    import base64
    text = base64.urlsafe_b64encode(wire).decode()
    assert decode_dns_param("/dns-query?dns=" + text.rstrip("=")) == wire
    assert decode_dns_param("/dns-query?dns=" + text) == wire
    assert decode_dns_param("/dns-query?a=b&dns=" + text.rstrip("=")) == wire
    assert decode_dns_param("/dns-query?xdns=" + text) is None
    assert decode_dns_param("/dns-query") is None


@pytest.mark.parametrize("path,exact,expected", [
    ("/dns-query", True, "ok"), ("/dns-query?dns=x", True, "ok"), ("/other", True, "ok"),
    ("/dns-queryx", True, "h2o"), ("/", True, "h2o"), ("/dns-query/sub", True, "dnsdist"),
    ("/dns-query/sub", False, "ok"),
])
def test_paths_route_as_h2o_and_dnsdist(path: str, exact: bool, expected: str) -> None:
    doh = DOHFrontend(["/dns-query", "/other"], {"exactPathMatching": exact})
    assert doh.route(path) == expected
    assert DOHFrontend(["/"], {}).route("/anything") == "dnsdist"


def test_added_opt_rr_comes_off_and_ttl_is_the_lowest() -> None:
    q = dns.message.make_query("example.com.", "A", use_edns=0, payload=4096)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("example.com.", 300, "IN", "A", "192.0.2.1"))
    r.authority.append(dns.rrset.from_text("example.com.", 60, "IN", "NS", "ns.example."))
    wire = r.to_wire()
    stripped = dns.message.from_wire(strip_opt(wire))
    assert stripped.edns == -1 and stripped.answer == r.answer
    assert min_ttl(wire) == 60
    assert min_ttl(b"not dns") is None


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default


class FakeState:
    def __init__(self) -> None:
        self.tcp_counters: dict[str, int] = {}
        self.decl = types.SimpleNamespace(options={})      # the listener's options


class FakeHandler:
    """Answers each request with its method and path, after a loop turn when `later`."""

    def __init__(self, later: bool = False, size: int = 0) -> None:
        self.doh = DOHFrontend([], {})
        self.size = size                 # answer with this many bytes instead
        self.fe = FakeState()
        self.later = later
        self.seen: list[DOHRequest] = []

    def handle(self, req: DOHRequest) -> None:
        self.seen.append(req)
        body = f"{req.method} {req.path}".encode() if not self.size else b"x" * self.size

        def answer() -> None:
            req.send(200, "OK", [("server", "s"), ("date", "d"), ("x-a", "b")], body)
        if self.later:
            asyncio.get_running_loop().call_soon(answer)
        else:
            answer()


def _connection(later: bool = False, size: int = 0
                ) -> tuple[DOHConnection, FakeTransport, FakeHandler]:
    handler = FakeHandler(later, size)
    conn = DOHConnection(handler, {})  # type: ignore[arg-type]
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport, handler


@pytest.mark.parametrize("later", [False, True])
def test_http1_pipelined_requests_answer_in_order(later: bool) -> None:
    async def run() -> bytes:
        conn, transport, handler = _connection(later)
        conn.data_received(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\n"
                           b"Content-Length: 3\r\nX-Foo: Bar\r\n\r\nxyzGET /c HTTP/1.1\r\n")
        conn.data_received(b"Host: h\r\nConnection: close\r\n\r\n")
        for _ in range(10):
            await asyncio.sleep(0)
        assert [r.path for r in handler.seen] == ["/a", "/b", "/c"]
        assert handler.seen[1].body == b"xyz" and ("x-foo", "Bar") in handler.seen[1].headers
        assert handler.seen[0].host == "h" and handler.seen[0].version == 1
        assert transport.closed
        return bytes(transport.out)
    out = asyncio.run(run())
    assert out.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert out.startswith(b"HTTP/1.1 200 OK\r\nDate: d\r\nConnection: keep-alive\r\n"
                          b"Content-Length: 6\r\nServer: s\r\nx-a: b\r\n\r\nGET /a")
    assert b"Connection: close\r\nContent-Length: 6\r\nServer: s\r\nx-a: b\r\n\r\nGET /c" in out


def test_http1_garbage_gets_a_bare_400_and_the_connection_closes() -> None:
    async def run() -> FakeTransport:
        conn, transport, _ = _connection()
        conn.data_received(b"\x16\x03\x01garbage\r\n\r\n")
        return transport
    transport = asyncio.run(run())
    assert bytes(transport.out) == H1_GARBAGE and transport.closed


def test_http2_streams_get_their_answers() -> None:
    async def run() -> tuple[list[Any], FakeHandler]:
        conn, transport, handler = _connection(later=True)
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        for sid, path in ((1, "/x?dns=a"), (3, "/y")):
            client.send_headers(sid, [(":method", "GET"), (":path", path),
                                      (":scheme", "https"), (":authority", "host.test"),
                                      ("user-agent", "t")], end_stream=True)
        conn.data_received(client.data_to_send())
        for _ in range(10):
            await asyncio.sleep(0)
        events = client.receive_data(bytes(transport.out))
        return events, handler
    events, handler = asyncio.run(run())
    assert [(r.path, r.host, r.version) for r in handler.seen] == [
        ("/x?dns=a", "host.test", 2), ("/y", "host.test", 2)]
    responses = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert [dict(e.headers)[b":status"] for e in responses] == [b"200", b"200"]
    assert [k for k, _ in responses[0].headers] == [b":status", b"server", b"date", b"x-a",
                                                    b"content-length"]
    bodies = {e.stream_id: e.data for e in events if isinstance(e, h2.events.DataReceived)}
    assert bodies == {1: b"GET /x?dns=a", 3: b"GET /y"}


def test_http2_broken_frames_close_only_that_connection() -> None:
    async def run() -> FakeTransport:
        conn, transport, _ = _connection()
        conn.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x09\x00\x00\x00\x00"
                           b"\x01junk")
        return transport
    transport = asyncio.run(run())
    assert transport.closed and b"\x00\x00\x00\x01" in bytes(transport.out)   # PROTOCOL_ERROR


def test_http2_answers_wait_for_the_clients_window() -> None:
    """Three 30 kB answers on one connection exceed its 64 kB window: the rest is sent when
    the client opens it again, never reset."""
    async def run() -> dict[int, int]:
        conn, transport, _ = _connection(later=True, size=30000)
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        for sid in (1, 3, 5):
            client.send_headers(sid, [(":method", "GET"), (":path", "/q"), (":scheme", "https"),
                                      (":authority", "a")], end_stream=True)
        conn.data_received(client.data_to_send())
        for _ in range(5):
            await asyncio.sleep(0)
        got: dict[int, int] = {}
        ended: set[int] = set()
        for _ in range(10):
            data, transport.out = bytes(transport.out), bytearray()
            for ev in client.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    got[ev.stream_id] = got.get(ev.stream_id, 0) + len(ev.data)
                    client.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended.add(ev.stream_id)
                assert not isinstance(ev, h2.events.StreamReset)
            conn.data_received(client.data_to_send())
            if ended == {1, 3, 5}:
                break
        return got
    assert asyncio.run(run()) == {1: 30000, 3: 30000, 5: 30000}


def test_http1_pipelining_is_read_ahead_only_so_far() -> None:
    async def run() -> tuple[bool, bool, int]:
        conn, transport, handler = _connection(later=True)
        one = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n"
        conn.data_received(one * 3000)              # about 90 kB of requests at once
        paused = transport.paused
        for _ in range(20000):
            await asyncio.sleep(0)
            if len(handler.seen) == 3000 and transport.out.count(b"HTTP/1.1 200") == 3000:
                break
        return paused, transport.paused, len(handler.seen)
    paused, still, answered = asyncio.run(run())
    assert paused and not still and answered == 3000
