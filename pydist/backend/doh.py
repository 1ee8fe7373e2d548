"""DoH to a backend (newServer{tls="openssl", dohPath=...}): each query an HTTP/2 POST over TLS.

As dnsdist 1.7.3 does it (its nghttp2 client, observed against the binary; see
tests/integration/test_doh_backend_diff.py):
1. A request carries :method POST, :scheme https, :authority (the subjectName, even empty),
   :path (the dohPath), accept and content-type application/dns-message, user-agent and
   content-length; with addXForwardedHeaders, x-forwarded-for/-port/-proto of the client.
2. A query takes an open connection with room for one more stream (the server's
   SETTINGS_MAX_CONCURRENT_STREAMS), else opens one; UDP and TCP clients share them. With
   proxy protocol a query gets a connection of its own, the header first inside TLS, never
   reused. Health checks open a connection each and close it after the answer.
3. An answer is taken when its status is 200, whatever its content type; a body shorter than a
   DNS header is dropped. A non-200 status or a short body is counted nowhere.
4. A stream closed with an error (RST_STREAM from the server, a body whose length is not its
   content-length) counts tcpDiedReadingResponse, leaves that connection unused, and the query
   goes again on another one, `retries` times at most.
5. The connection dying with streams open counts tcpDiedReadingResponse once and drops them.
   Nothing read for tcpRecvTimeout (idle connections too): tcpReadTimeouts, dropped, closed.
   A refused connect is tried `retries` times (each a new connection); a failed handshake
   counts tcpDiedSendingQuery; a connect timeout tcpConnectTimeouts; all drop the queries.
6. What is not HTTP/2 from the server ends the session (GOAWAY); its queries wait for the close
   or the timeout, as nghttp2's do.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from pydist.backend.server import DownstreamState
from pydist.backend.tcp import account_closed
from pydist.backend.tls import TLSHandshakeError, open_tls
from pydist.h2frames import FrameLengths

Reply = Callable[[bytes | None], None]
Origin = tuple[str, int, bytes]     # client address, client port, x-forwarded-proto value
DNS_MESSAGE = b"application/dns-message"
USER_AGENT = b"nghttp2-1.51.0/dnsdist"      # dnsdist 1.7.3's, with Debian 12's nghttp2
MAX_FRAME = 16384           # SETTINGS_MAX_FRAME_SIZE: dnsdist leaves nghttp2's default
MAX_BODY = 65535                            # larger is no DNS answer: the connection is failed
# dnsdist's SETTINGS: no server push, a 16 MB window (answers are never held back)
LOCAL_SETTINGS = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0,
                  h2.settings.SettingCodes.ENABLE_PUSH: 0,
                  h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 * 1024 * 1024}


class _Stream:
    """One query on its way: what to send again on a retry, and the answer as it arrives."""
    __slots__ = ("query", "reply", "attempt", "origin", "status", "length", "body")

    def __init__(self, query: bytes, reply: Reply, origin: Origin | None) -> None:
        self.query, self.reply, self.origin = query, reply, origin
        self.attempt = 0
        self.status = 0
        self.length: int | None = None
        self.body = bytearray()


class _Client(h2.connection.H2Connection):
    """h2's client, but a body that does not match its content-length is this stream's error,
    not the connection's: nghttp2 resets just that stream (rule 4), h2 would end them all."""

    def _begin_new_stream(self, stream_id: int, allowed_ids: Any) -> Any:
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        stream._initialize_content_length = _no_length_check      # checked in _ended()
        return stream


def _no_length_check(headers: Any) -> None:
    return None


def _client() -> _Client:
    conn = _Client(h2.config.H2Configuration(client_side=True, header_encoding=None,
                                             validate_outbound_headers=False,
                                             normalize_outbound_headers=False))
    conn.local_settings = h2.settings.Settings(client=True, initial_values=LOCAL_SETTINGS)
    conn.initiate_connection()
    return conn


class DoHConnection(asyncio.Protocol):
    """One HTTP/2 connection to the server, the inner protocol of a TLS layer. Streams can be
    queued before the connection exists: they leave when it does (after the handshake)."""

    def __init__(self, pool: DoHBackendPool, proxy: bytes = b"", health: bool = False) -> None:
        self.pool = pool
        self.tcp = pool.server.tcp
        self.proxy = proxy
        self.health = health
        self.h2 = _client()
        self.transport: Any = None
        self.streams: dict[int, _Stream] = {}
        self.dead = False          # takes no new stream (GOAWAY, stream error, garbage)
        self.failed = False        # garbage received: nothing more is read
        self.frames = FrameLengths()     # rule 6: a frame too long fails the session at once
        self.closed = False
        self.counted = False
        self.timer: asyncio.TimerHandle | None = None
        self.started = time.monotonic()
        self.completed = 0         # streams answered, whatever the status (dnsdist's d_queries)
        self.timeout = pool.check_timeout if health else pool.recv_timeout

    # --- streams
    def can_take(self) -> bool:
        return (not self.dead and not self.closed
                and len(self.streams) < self.h2.remote_settings.max_concurrent_streams)

    def send(self, st: _Stream) -> None:
        """Queue one query as a POST; a refusal by the HTTP/2 layer fails it at once."""
        try:
            sid = self.h2.get_next_available_stream_id()
            self.h2.send_headers(sid, self.pool.headers(len(st.query), st.origin))
            self.h2.send_data(sid, st.query, end_stream=True)
        except h2.exceptions.H2Error:
            self.tcp["tcpDiedSendingQuery"] += 1
            self.dead = True
            st.reply(None)
            return
        self.streams[sid] = st
        self._flush()
        self._arm()

    def _flush(self) -> None:
        """Frames out, once there is a transport (until then h2 keeps them)."""
        if self.transport is not None and not self.closed:
            data = self.h2.data_to_send()
            if data:
                self.transport.write(data)

    def _arm(self) -> None:
        """The read deadline, from the last query sent or answer completed (rule 5)."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.pool.loop.call_later(self.timeout, self._timed_out) \
            if not self.closed else None

    def _timed_out(self) -> None:
        self.timer = None
        if self.closed:
            return
        self.tcp["tcpReadTimeouts"] += 1
        self.fail_all()
        self.close()

    # --- below: the TLS layer
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.closed:              # the server was removed while this one was opening
            transport.close()
            return
        self.counted = True
        self.pool.opened(self)
        if self.proxy:
            transport.write(self.proxy)
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.closed or self.dead and self.failed:
            return
        try:
            if self.frames.too_long(data, MAX_FRAME):
                self.h2.close_connection(h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
                raise h2.exceptions.ProtocolError("frame too large")
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.dead = self.failed = True      # rule 6: a GOAWAY queued, nothing more read
            self._flush()
            return
        for event in events:
            self._event(event)
            if self.closed:
                return
        self._flush()
        if not self.streams and (self.dead or self.health):
            self.close()

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            st = self.streams.get(event.stream_id)
            if st is not None:
                for name, value in event.headers:
                    if name == b":status":
                        st.status = int(value) if value.isdigit() else 0
                    elif name == b"content-length" and value.isdigit():
                        st.length = int(value)
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.body += event.data
                if len(st.body) > MAX_BODY:
                    self.tcp["tcpDiedReadingResponse"] += 1
                    self.fail_all()
                    self.close()
        elif isinstance(event, h2.events.StreamEnded):
            st = self.streams.pop(event.stream_id, None)
            if st is not None:
                self._ended(event.stream_id, st)
        elif isinstance(event, h2.events.StreamReset):
            if event.error_code:       # without one (nghttp2 too) the query waits for the timeout
                self._stream_error(self.streams.pop(event.stream_id, None))
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.dead = True

    def _ended(self, sid: int, st: _Stream) -> None:
        self.completed += 1
        if self.completed == 1:      # its session (TLS 1.3: the ticket) has arrived by now
            self.pool.server.tls.keep_session(self.transport)
        self._arm()
        if st.length is not None and st.length != len(st.body):
            self._stream_error(st)
            return
        if st.status != 200:
            if self.pool.verbose:
                self.pool.log(f"HTTP response has a non-200 status code: {st.status}")
            st.reply(None)
            return
        # a health check judges even a short body (its "Invalid health check response" line)
        st.reply(bytes(st.body) if len(st.body) >= 12 or self.health else None)

    def _stream_error(self, st: _Stream | None) -> None:
        """Rule 4: counted, this connection left alone, the query tried again elsewhere."""
        self.tcp["tcpDiedReadingResponse"] += 1
        self.dead = True
        if st is None:
            return
        if self.health or st.attempt >= self.pool.retries:
            st.reply(None)
            return
        st.attempt += 1
        st.status, st.length, st.body = 0, None, bytearray()     # the next answer from scratch
        self.pool.send(st, self.proxy)

    def fail_all(self) -> None:
        """Every query still open here gets no answer (no retry: dnsdist's handleIOError)."""
        streams, self.streams = self.streams, {}
        for st in streams.values():
            st.reply(None)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()
        else:
            self.pool.forget(self)

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.streams:
            if not was_closed:
                self.tcp["tcpDiedReadingResponse"] += 1
            self.fail_all()
        self.pool.forget(self)


class DoHBackendPool:
    """The connections to one DoH server; `query` as BackendTCPPool's (packet_path uses both)."""

    def __init__(self, loop: Any, server: DownstreamState, log: Callable[[str], None],
                 verbose: bool = False) -> None:
        self.loop = loop
        self.server = server
        self.log = log
        self.verbose = verbose
        opts = server.options
        self.conns: list[DoHConnection] = []       # shared, in the order they were opened
        self.live: set[DoHConnection] = set()
        self.connect_timeout = float(opts.get("tcpConnectTimeout") or 5)
        self.recv_timeout = float(opts.get("tcpRecvTimeout") or 30)
        self.check_timeout = float(opts.get("checkTimeout") or 1000) / 1000.0
        self.retries = int(opts.get("retries") if opts.get("retries") is not None else 5)
        self.base_headers = [
            (b":method", b"POST"), (b":scheme", b"https"),
            (b":authority", str(opts.get("subjectName") or "").encode("idna")),
            (b":path", str(opts.get("dohPath") or "").encode()),
            (b"accept", DNS_MESSAGE), (b"content-type", DNS_MESSAGE),
            (b"user-agent", USER_AGENT)]

    def headers(self, length: int, origin: Origin | None) -> list[tuple[bytes, bytes]]:
        out = self.base_headers + [(b"content-length", str(length).encode())]
        if origin is not None:
            out += [(b"x-forwarded-for", origin[0].encode()),
                    (b"x-forwarded-port", str(origin[1]).encode()),
                    (b"x-forwarded-proto", origin[2])]
        return out

    def query(self, query: bytes, reply: Reply, proxy: bytes = b"", owner: Any = None,
              origin: Origin | None = None) -> None:
        """Send one query; reply(answer) or reply(None). `owner` is unused: with proxy
        protocol every query has its own connection (rule 2)."""
        self.server.queries += 1
        self.send(_Stream(query, reply, origin), proxy)

    def send(self, st: _Stream, proxy: bytes = b"") -> None:
        if not proxy:
            for conn in self.conns:
                if conn.can_take():
                    self.server.tcp["tcpReusedConnections"] += 1
                    conn.send(st)
                    return
        conn = self.connect(proxy)
        conn.send(st)

    def connect(self, proxy: bytes = b"", health: bool = False) -> DoHConnection:
        """A new connection, opening in the background; shared unless proxied or a check."""
        conn = DoHConnection(self, proxy, health)
        if not proxy and not health:
            self.conns.append(conn)
        self.loop.create_task(self._open(conn))
        return conn

    async def _open(self, conn: DoHConnection) -> None:
        """Rule 5's connect outcomes; `retries` attempts while the connect is refused."""
        tcp = self.server.tcp
        for _ in range(max(1, self.retries)):
            if conn.closed:
                return
            tcp["tcpNewConnections"] += 1
            try:
                await asyncio.wait_for(open_tls(self.loop, self.server, conn, self.log),
                                       self.connect_timeout)
                return
            except TimeoutError:
                tcp["tcpConnectTimeouts"] += 1
            except TLSHandshakeError:
                tcp["tcpDiedSendingQuery"] += 1
            except OSError:
                if conn.counted:        # connected, then lost before the handshake ended
                    break
                continue
            break
        conn.closed = True
        conn.fail_all()
        self.forget(conn)

    def opened(self, conn: DoHConnection) -> None:
        self.live.add(conn)
        tcp = self.server.tcp
        tcp["tcpCurrentConnections"] = len(self.live)
        tcp["tcpMaxConcurrentConnections"] = max(tcp["tcpMaxConcurrentConnections"],
                                                 len(self.live))

    def forget(self, conn: DoHConnection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        if conn in self.live:
            self.live.discard(conn)
            account_closed(self.server.tcp, conn.completed, conn.started)
            self.server.tcp["tcpCurrentConnections"] = len(self.live)

    def close(self) -> None:
        for conn in list(self.live) + self.conns:
            conn.close()


async def doh_check(server: DownstreamState, query: bytes, proxy: bytes) -> bytes | None:
    """One health query on a connection of its own: the answer, or None for a failure dnsdist
    does not explain (no status 200, no answer within checkTimeout, a connection error)."""
    pool: DoHBackendPool = server.tcp_pool
    fut: asyncio.Future[bytes | None] = pool.loop.create_future()

    def done(resp: bytes | None) -> None:
        if not fut.done():
            fut.set_result(resp)
    conn = pool.connect(proxy, health=True)
    conn.send(_Stream(query, done, None))
    try:
        return await fut
    finally:
        conn.close()
