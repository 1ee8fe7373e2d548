"""The HTTP side of a DoH connection: HTTP/1.1 (h11) or HTTP/2 (h2, prior knowledge or ALPN),
told apart by the client's first bytes, under the TLS layer or straight on TCP.

Each complete request becomes a `DOHRequest` for `DOHHandler`; bad framing closes only this
connection (h2o answers HTTP/1 garbage with a bare 400, HTTP/2 errors with a GOAWAY).
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import h11

from pydist.frontend.doh import MAX_BODY, DOHHandler, DOHRequest
from pydist.frontend.tcp import over_connection_limit

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H1_GARBAGE = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
              b"Connection: close\r\nContent-Length: 11\r\n\r\nBad Request")
H1_TIMEOUT = 10.0
PIPELINE_LIMIT = 65536      # bytes of pipelined HTTP/1 requests read ahead of the answers


class DOHConnection(asyncio.Protocol):
    """One DoH client connection (the inner protocol of a TLS layer when HTTPS)."""

    def __init__(self, handler: DOHHandler, per_client: dict[str, int]) -> None:
        self.handler = handler
        self.fe = handler.fe
        self.per_client = per_client
        self.transport: Any = None
        self.peer: Any = None
        self.scheme = "https" if handler.doh.tls is not None else "http"
        self.buf = b""
        self.proto: _H1 | _H2 | None = None
        self.closed = False
        self.writing_paused = False
        self.inflight = 0
        self.last_active = time.monotonic()
        self.timer: asyncio.TimerHandle | None = None
        self.counted = False
        self.requests = 0
        self.session_counted = False
        self.started = time.monotonic()

    # --- connection
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        if over_connection_limit(self.fe):     # maxConcurrentTCPConnections, as TCP and DoT
            self.closed = True
            transport.close()
            return
        self.handler.doh.counters.http_connects += 1
        c = self.fe.tcp_counters
        c["tcpCurrentConnections"] = c.get("tcpCurrentConnections", 0) + 1
        c["tcpMaxConcurrentConnections"] = max(c.get("tcpMaxConcurrentConnections", 0),
                                               c["tcpCurrentConnections"])
        self.counted = True
        self._arm()

    def _timeout(self) -> float:
        """h2o's: HTTP/2 connections idle for idleTimeout get a GOAWAY; anything else (no
        request yet, HTTP/1) is closed after its fixed 10 s request timeout."""
        return self.handler.doh.idle_timeout if isinstance(self.proto, _H2) else H1_TIMEOUT

    def _arm(self) -> None:
        self.last_active = time.monotonic()
        if self.timer is None and not self.closed:
            self.timer = asyncio.get_running_loop().call_later(self._timeout(), self._idle)

    def _idle(self) -> None:
        self.timer = None
        if self.closed:
            return
        left = self.last_active + self._timeout() - time.monotonic()
        if self.inflight or left > 0.001:
            self.timer = asyncio.get_running_loop().call_later(max(left, 0.1), self._idle)
            return
        if isinstance(self.proto, _H2):
            self.proto.goaway(0, b"idle timeout")
        self.close()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._arm()
        if self.proto is None:
            self.buf += data
            n = min(len(self.buf), len(H2_PREFACE))
            if self.buf[:n] == H2_PREFACE[:n] and n < len(H2_PREFACE):
                return                  # maybe HTTP/2: wait for the whole preface
            data, self.buf = self.buf, b""
            self.proto = _H2(self) if data.startswith(H2_PREFACE) else _H1(self)
            if self.timer is not None and isinstance(self.proto, _H2):
                self.timer.cancel()      # from now on the HTTP/2 idle timeout applies
                self.timer = None
                self._arm()
        try:
            self.proto.feed(data)
        except Exception:                # a framing bug must cost this client only
            self.close()

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        """The client is not reading its answers: read no more requests until it does."""
        self.writing_paused = True
        if not self.closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.closed:
            return
        self.transport.resume_reading()
        if isinstance(self.proto, _H1):
            self.proto._pump()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.counted:
            self.counted = False
            c = self.fe.tcp_counters
            c["tcpCurrentConnections"] = c.get("tcpCurrentConnections", 1) - 1
            # dnsdist's moving averages over closed connections, ms for the duration
            c["tcpAvgQueriesPerConnection"] = (99 * c.get("tcpAvgQueriesPerConnection", 0)
                                               + self.requests) / 100
            c["tcpAvgConnectionDuration"] = (99 * c.get("tcpAvgConnectionDuration", 0) + 1000
                                             * (time.monotonic() - self.started)) / 100

    # --- requests
    def tls_info(self) -> tuple[bool, str, bool] | None:
        t = self.transport
        if self.handler.doh.tls is None or not hasattr(t, "session_reused"):
            return None
        return t.session_reused(), t.version(), not self.session_counted

    def _mark_counted(self) -> None:
        self.session_counted = True

    def sni(self) -> str:
        return getattr(self.transport, "sni", None) or ""

    def request(self, method: str, path: str, host: str, headers: list[tuple[str, str]],
                version: int, body: bytes, send: Any) -> None:
        req = DOHRequest(method, path, host, self.scheme, headers, version, body, self.peer,
                         send)
        req.tls_info = self.tls_info()
        req.counted = self._mark_counted
        req.sni = self.sni()
        self.inflight += 1
        self.requests += 1
        self.handler.handle(req)


class _H1:
    """HTTP/1.x over h11: requests answered in order, keep-alive as h2o."""

    def __init__(self, conn: DOHConnection) -> None:
        self.conn = conn
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
        self.pending: deque[tuple] = deque()
        self.current: tuple | None = None
        self.body = bytearray()
        self.busy = False
        self.paused = False
        self.pumping = False

    def feed(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._pump()
        if self.busy and not self.paused and len(self.h11.trailing_data[0]) > PIPELINE_LIMIT:
            self.paused = True           # pipelined requests wait in the kernel, not here
            self.conn.transport.pause_reading()

    def _pump(self) -> None:
        """Take requests in a loop: an answer given at once (cache hit) comes back here through
        _send instead of starting the next request itself (no recursion over pipelined
        requests); nothing is taken while the client is not reading its answers."""
        if self.pumping:
            return
        self.pumping = True
        try:
            self._take()
        finally:
            self.pumping = False

    def _take(self) -> None:
        conn = self.conn
        while not conn.closed and not self.busy and not conn.writing_paused:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                conn.write(H1_GARBAGE)
                conn.close()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.current = event
                self.body = bytearray()
            elif isinstance(event, h11.Data):
                if len(self.body) + len(event.data) > MAX_BODY + 1:
                    self.body = self.body[:MAX_BODY + 1]
                else:
                    self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                conn.close()
                return

    def _dispatch(self) -> None:
        ev = self.current
        headers, host = [], ""
        for name, value in ev.headers:
            n, v = name.decode("latin-1").lower(), value.decode("latin-1")
            if n == "host":
                host = v
            else:
                headers.append((n, v))
        self.busy = True
        self.keep = ev.http_version == b"1.1" and not any(
            n == "connection" and v.lower() == "close" for n, v in headers)
        self.head = ev.method == b"HEAD"
        self.conn.request(ev.method.decode("latin-1"), ev.target.decode("latin-1"), host,
                          headers, 1, bytes(self.body), self._send)

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]],
              body: bytes) -> None:
        """h2o's HTTP/1 order: Date, Connection, Content-Length, Server, then the others."""
        conn = self.conn
        conn.inflight -= 1
        if conn.closed:
            return
        fixed = {"date": "", "server": ""}
        rest = []
        for n, v in headers:
            if n in fixed:
                fixed[n] = v
            else:
                rest.append((n, v))
        out = [("Date", fixed["date"]), ("Connection", "keep-alive" if self.keep else "close"),
               ("Content-Length", str(len(body)))]
        if fixed["server"]:
            out.append(("Server", fixed["server"]))
        out += rest
        lines = [f"HTTP/1.1 {status} {reason}\r\n"] + [f"{n}: {v}\r\n" for n, v in out]
        conn.write("".join(lines).encode("latin-1") + b"\r\n" + (b"" if self.head else body))
        conn._arm()
        if not self.keep:
            conn.close()
            return
        # h11 parses; the answer is written as h2o orders it, so the next request starts on
        # a fresh parser fed with what followed this one (pipelined requests)
        tail, closed = self.h11.trailing_data
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
        if tail:
            self.h11.receive_data(bytes(tail))    # b"" would mean the client closed
        if closed:
            self.h11.receive_data(b"")
        self.busy = False
        self._pump()
        if self.paused and not conn.closed and not conn.writing_paused and \
                len(self.h11.trailing_data[0]) <= PIPELINE_LIMIT // 2:
            self.paused = False
            conn.transport.resume_reading()


class _H2:
    """HTTP/2 over h2: streams answered as their answers come."""

    def __init__(self, conn: DOHConnection) -> None:
        self.conn = conn
        # our own answer headers are already valid and lowercase: not checked again per answer
        config = h2.config.H2Configuration(client_side=False, header_encoding="latin-1",
                                           validate_inbound_headers=True,
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,     # as h2o
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16777216})
        self.h2.initiate_connection()
        self.streams: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        self.waiting: dict[int, bytes] = {}     # answer bytes beyond the flow-control window
        self.skip, self.head = len(H2_PREFACE), b""     # frame-header tracking

    def _frames_fit(self, data: bytes) -> bool:
        """Follow the frame headers: h2o refuses a frame longer than its maximum as soon as
        the header says so (h2 would first buffer the whole frame)."""
        i, n, limit = 0, len(data), self.h2.max_inbound_frame_size
        while i < n:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                continue
            need = 9 - len(self.head)
            self.head += data[i:i + need]
            i += need
            if len(self.head) == 9:
                length = int.from_bytes(self.head[:3], "big")
                if length > limit:
                    return False
                self.skip, self.head = length, b""
        return True

    def feed(self, data: bytes) -> None:
        if not self._frames_fit(data):
            self.goaway(6)               # FRAME_SIZE_ERROR, and the connection closed
            self.conn.close()
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            self.conn.close()
            return

        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = (list(ev.headers), bytearray())
            elif isinstance(ev, h2.events.DataReceived):
                entry = self.streams.get(ev.stream_id)
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if entry is not None and len(entry[1]) <= MAX_BODY:
                    entry[1].extend(ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                self._dispatch(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.streams.pop(ev.stream_id, None)
                self.waiting.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.WindowUpdated) and self.waiting:
                for sid in ([ev.stream_id] if ev.stream_id else list(self.waiting)):
                    if sid in self.waiting:
                        self._send_body(sid, self.waiting.pop(sid))
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self._flush()
                self.conn.close()
                return
        self._flush()

    def _dispatch(self, stream_id: int) -> None:
        entry = self.streams.pop(stream_id, None)
        if entry is None:
            return
        raw, body = entry
        pseudo, headers = {}, []
        for name, value in raw:
            n = name if isinstance(name, str) else name.decode("latin-1")
            v = value if isinstance(value, str) else value.decode("latin-1")
            if n.startswith(":"):
                pseudo[n] = v
            else:
                headers.append((n.lower(), v))
        self.conn.request(pseudo.get(":method", "GET"), pseudo.get(":path", "/"),
                          pseudo.get(":authority", ""), headers, 2, bytes(body),
                          lambda s, _r, h, b, i=stream_id, m=pseudo.get(":method"): self._send(
                              i, s, h, b, m == "HEAD"))

    def _send(self, stream_id: int, status: int, headers: list[tuple[str, str]], body: bytes,
              head: bool) -> None:
        conn = self.conn
        conn.inflight -= 1
        if conn.closed:
            return
        out = [(":status", str(status))] + [(n.lower(), v) for n, v in headers]
        out.append(("content-length", str(len(body))))
        try:
            self.h2.send_headers(stream_id, out, end_stream=head or not body)
            if body and not head:
                self._send_body(stream_id, body)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            pass                         # the client reset the stream meanwhile
        self._flush()
        conn._arm()

    def _send_body(self, stream_id: int, body: bytes) -> None:
        """As much as the client's windows allow; the rest waits for its WINDOW_UPDATE (many
        answers in flight on one connection share its window)."""
        try:
            size = min(self.h2.local_flow_control_window(stream_id),
                       self.h2.max_outbound_frame_size)
            while body and size > 0:
                chunk, body = body[:size], body[size:]
                self.h2.send_data(stream_id, chunk, end_stream=not body)
                size = min(self.h2.local_flow_control_window(stream_id),
                           self.h2.max_outbound_frame_size)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            return                       # the stream is gone meanwhile
        if body:
            self.waiting[stream_id] = body

    def goaway(self, code: int, why: bytes = b"") -> None:
        self.h2.close_connection(error_code=code, additional_data=why or None)
        self._flush()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.conn.write(data)


def make_doh_protocol(path: Any, decl: Any, per_client: dict[str, int],
                      log_errors: bool = False) -> asyncio.Protocol:
    """The protocol factory for one DoH listener: HTTP straight on TCP, or under TLS."""
    handler = DOHHandler(path, decl.tcp_state, decl.doh)
    inner = DOHConnection(handler, per_client)
    tls = decl.tls
    if tls is None:
        return inner

    def failed(layer: Any, why: str) -> None:
        tls.handshake_failed(layer, why)
        if log_errors:
            path.reg.log(f"Error while processing TLS connection from "
                         f"{layer.get_extra_info('peername')}: {why}")
    return tls.new_layer(inner, None, failed)
