"""TCP frontend: 2-byte length framing, dnsdist's limits, and pipelining taken in a loop.

Queries read from one connection wait in `pending`; `_pump` starts them one after the other in
a loop, at most `bound` in progress at once (the listener's maxInFlight, else 1: answered in
order, as dnsdist without maxInFlight). An answer that comes back at once (a cache hit, a
spoof) only ends its query: the loop that started it takes the next one, so pipelined hits never
nest calls. Reading pauses while READ_AHEAD queries wait or while the client is not reading its
answers (the transport's write buffer is full); the send timeout then closes it, as dnsdist.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from pydist.frontend.proxied import read_header
from pydist.transport import Transport
from pydist.verdict import ANSWER, DEFERRED_KIND, FORWARD, QueryOrigin

TCP_FRONTEND_COUNTERS = ("tcpDiedReadingQuery", "tcpDiedSendingResponse", "tcpGaveUp",
                         "tcpClientTimeouts", "tcpDownstreamTimeouts", "tcpCurrentConnections",
                         "tcpMaxConcurrentConnections")
READ_AHEAD = 64          # queries read ahead of the ones in progress before reading pauses


def listener_bound(fe: Any) -> int:
    """Queries in progress at once on one connection: the listener's maxInFlight, else 1."""
    try:
        return max(1, int(fe.decl.options.get("maxInFlight") or 1))
    except (TypeError, ValueError):
        return 1


def over_connection_limit(fe: Any) -> bool:
    """maxConcurrentTCPConnections: as dnsdist 1.7.3's acceptor, a connection beyond the
    listener's limit is closed right after accept, before the ACL, and counted nowhere."""
    try:
        limit = int(fe.decl.options.get("maxConcurrentTCPConnections") or 0)
    except (TypeError, ValueError):
        return False
    return limit > 0 and fe.tcp_counters.get("tcpCurrentConnections", 0) >= limit


class TCPClientConnection(asyncio.Protocol):
    """One client connection; at most `bound` queries in progress, answers written as they come."""

    def __init__(self, path: Any, fe: Any, per_client: dict[str, int]) -> None:
        self.path = path
        self.fe = fe
        self.per_client = per_client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: deque[bytes] = deque()
        self.bound = listener_bound(fe)
        self.in_flight = 0
        self.pumping = False
        self.reading_paused = False
        self.writing_paused = False
        self.received = 0
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.send_timer: asyncio.TimerHandle | None = None
        self.peer: Any = None
        self.client: Any = None          # the peer, or the source its proxy protocol header names
        self.awaiting_proxy = False      # a setProxyProtocolACL source: its header comes first
        self.proxy_values: list | None = None
        self.destination: Any = None    # the real local address (wildcard listener) or proxied
        self.counted_host: str | None = None
        self.started = self.last_active = time.monotonic()
        self.started_wall = int(time.time())
        self.query_sink: Any = self      # how the query being started is answered
        # answers given while _pump runs: written together when it ends (one send, not one
        # per pipelined cache hit)
        self.out: list[bytes] = []
        # plain DNS over TCP: cache hits may take the exact-bytes shortcut (_exact_hit)
        self.shortcut = fe.transport is Transport.DO53_TCP and \
            type(self).unwrap is TCPClientConnection.unwrap

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peer = self.client = transport.get_extra_info("peername")
        if over_connection_limit(self.fe):
            self.closed = True
            transport.close()
            return
        if self.fe.decl.pktinfo:        # a wildcard listener: the address this client reached
            sockname = transport.get_extra_info("sockname")
            self.destination = tuple(sockname[:2]) if sockname else None
        reg = self.path.reg
        host = self.peer[0] if self.peer else ""
        if not reg.acl.match(host):
            reg.stats.acl_drops += 1
            self.closed = True
            transport.close()
            return
        limit = reg.settings.max_tcp_connections_per_client
        count = self.per_client.get(host, 0)
        if limit and count >= limit:
            self.closed = True
            transport.close()
            return
        self.per_client[host] = count + 1
        self.counted_host = host
        acl = self.path.proxy_acl
        self.awaiting_proxy = acl is not None and acl.match(host)
        c = self.fe.tcp_counters
        c["tcpCurrentConnections"] = c.get("tcpCurrentConnections", 0) + 1
        c["tcpMaxConcurrentConnections"] = max(c.get("tcpMaxConcurrentConnections", 0),
                                               c["tcpCurrentConnections"])
        self._arm()

    # --- timers
    def _read_timeout(self) -> float:
        """setTCPRecvTimeout, shortened to what is left of setMaxTCPConnectionDuration (dnsdist
        counts that in whole seconds of wall-clock time)."""
        timeout = self.path.settings.tcp_recv_timeout or 2
        duration = self.path.settings.max_tcp_connection_duration
        if duration:
            left = duration - max(0, int(time.time()) - self.started_wall)
            timeout = min(timeout, max(left, 0))
        return timeout

    def _duration_reached(self) -> bool:
        duration = self.path.settings.max_tcp_connection_duration
        return bool(duration) and int(time.time()) - self.started_wall >= duration

    def _arm(self) -> None:
        """Restart the idle clock. Lazily: one timer per connection that, when it fires early,
        re-arms for what is left (a cancel + call_later per query cost ~4 us each)."""
        self.last_active = time.monotonic()
        if self.timer is None and not self.closed:
            self.timer = self.path.loop.call_later(self._read_timeout(), self._idle_timeout)

    def _idle_timeout(self) -> None:
        self.timer = None
        if self.closed:
            return
        if self.in_flight and not self._duration_reached():
            return                      # answers re-arm it once written (dnsdist goes idle)
        left = self.last_active + self._read_timeout() - time.monotonic()
        if left > 0.001 and not self._duration_reached():
            self.timer = self.path.loop.call_later(left, self._idle_timeout)
            return
        self._count("tcpClientTimeouts")
        self._close()

    def _count(self, name: str) -> None:
        c = self.fe.tcp_counters
        c[name] = c.get(name, 0) + 1

    # --- flow control from the transport: the client is not reading its answers
    def pause_writing(self) -> None:
        self.writing_paused = True
        self._pause_reading()
        if self.send_timer is None and not self.closed:
            self.send_timer = self.path.loop.call_later(self.path.settings.tcp_send_timeout or 2,
                                                        self._send_timeout)

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.send_timer is not None:
            self.send_timer.cancel()
            self.send_timer = None
        self._pump()

    def _send_timeout(self) -> None:
        """Answers not taken by the client within setTCPSendTimeout: closed, as dnsdist's
        write timeout (tcpClientTimeouts)."""
        self.send_timer = None
        if self.writing_paused and not self.closed:
            self._count("tcpClientTimeouts")
            self._close()

    def _pause_reading(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and not self.closed and not self.writing_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    # --- queries in
    def take_proxy_header(self, data: bytes) -> bytes | None:
        """Bytes after the proxy protocol header once it is complete (b'' while it is not);
        None when it is invalid: counted, and the connection closed (as dnsdist 1.7.3)."""
        self.buf += data
        header = read_header(self.buf, self.path.settings.proxy_max_payload)
        if header is False:
            return b""
        if header is None:
            self.path.stats.proxy_protocol_invalid += 1
            self._close()
            return None
        source, destination, self.proxy_values, size = header
        self.destination = destination or self.destination
        self.client = source or self.peer
        rest = bytes(self.buf[size:])
        self.buf.clear()
        self.awaiting_proxy = False
        return rest

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._duration_reached():
            self._close()
            return
        if self.awaiting_proxy:
            data = self.take_proxy_header(data)
            if not data:
                return
        self.buf += data
        buf = self.buf
        while len(buf) >= 2:
            n = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + n:
                break
            if n < 12:
                self._close()
                return
            self.pending.append(bytes(buf[2:2 + n]))
            del buf[:2 + n]
        if len(self.pending) >= READ_AHEAD:
            self._pause_reading()
        self._arm()
        self._pump()

    def _pump(self) -> None:
        """Start waiting queries while the bound allows: a loop, so an answer given at once
        (cache hit, spoof) returns here instead of starting the next query itself."""
        if self.pumping:
            return
        self.pumping = True
        try:
            pending = self.pending
            settings = self.path.settings
            limited = settings.max_tcp_queries_per_connection or \
                settings.max_tcp_connection_duration
            while pending and self.in_flight < self.bound and not self.closed \
                    and not self.writing_paused:
                if limited and self._limit_reached():
                    self._close()
                    return
                self._start(pending.popleft())
        finally:
            self.pumping = False
            if self.out:
                self._flush()
        if len(self.pending) < READ_AHEAD // 2:
            self._resume_reading()

    def _limit_reached(self) -> bool:
        """setMaxTCPQueriesPerConnection (closed after n+1 answers: dnsdist checks count > n)
        and setMaxTCPConnectionDuration, checked before each query as dnsdist does."""
        limit = self.path.settings.max_tcp_queries_per_connection
        return bool(limit) and self.received > limit or self._duration_reached()

    def _start(self, q: bytes) -> None:
        """Intake, the query step, and its verdict acted on."""
        self.in_flight += 1
        self.received += 1
        path = self.path
        path.count_query(self.fe)
        q = self.unwrap(q)
        if q is None:
            return
        now = time.time()
        if not path.accept_query(q, self.client, self.fe, now):
            self._close()
            return
        if self.shortcut and path.fast_cache is not None:
            resp = self._exact_hit(path, q, now)
            if resp is not None:
                self._reply(resp)
                return
        self._act(path.query_step(q, self.client, self.destination, self.fe.transport, self.fe,
                                  now, self.origin()), self.query_sink)

    def _exact_hit(self, path: Any, q: bytes, now: float) -> bytearray | None:
        """The exact-bytes cache level, as the UDP drain loop asks it (pydist/frontend/udp.py):
        the answer, counted as the full path counts a TCP hit, or None to take the full path
        (a dynamic block may apply, a pure chain has no remembered verdict for these bytes,
        no ready answer)."""
        client = self.client
        blocks = path.dynblocks
        if blocks is not None and blocks.may_block(client[0], now, client[1]):
            return None
        memo = path.rule_memo
        resp = path.fast_cache.lookup_exact(q, False, int(now), memo)
        if resp is None:
            return None
        if memo is not None:
            for r in resp.note[1]:      # a pure chain's remembered verdict
                r.matches += 1
        stats = path.stats
        if q[2] & 0x01:
            stats.rdqueries += 1
        stats.cache_hits += 1     # as 1.7.3: not a frontend response
        stats.count_rcode(resp[3] & 0x0F)
        stats.zero_latency_samples(1)
        return resp

    def unwrap(self, q: bytes) -> bytes | None:
        """The DNS query a framed message carries (DNSCrypt decrypts here, and sets the
        query's `query_sink`); None when this connection ended that query itself."""
        return q

    def _act(self, v: Any, sink: Any) -> None:
        """A verdict: answered, forwarded (answered through the sink), waited for, or the
        query failed (the connection closed, as dnsdist)."""
        kind = v.kind
        if kind == ANSWER:
            sink.answer(None, v.data, 0)
        elif kind == DEFERRED_KIND:
            v.then(lambda later: self._act(later, sink))
        elif kind != FORWARD or not self.path.backends.forward(v, sink):
            sink.end(None)

    def origin(self) -> QueryOrigin | None:
        """What the connection learnt beyond its addresses (its proxy protocol TLVs)."""
        if self.proxy_values is None:
            return None
        return QueryOrigin("", None, self.proxy_values)

    # --- the sink of the queries this connection forwarded (pydist/frontend/sink.py)
    def answer(self, st: Any, resp: bytes, delay_ms: int) -> None:
        self._reply(resp)

    def answer_part(self, st: Any, resp: bytes) -> None:
        self._reply(resp, True)

    def end(self, st: Any) -> None:
        self._reply(None)

    def timed_out(self, st: Any) -> None:
        self._reply(None)

    # --- answers out
    def _reply(self, resp: bytes | None, more: bool = False) -> None:
        """An answer (None: the query failed, the connection is closed as dnsdist does);
        `more`: one message of a zone transfer, more to come for the same query."""
        if not more:
            self.in_flight -= 1
        if self.closed:
            return
        if resp is None:
            self._close()
            return
        frame = len(resp).to_bytes(2, "big") + resp   # a copy: cached buffers are reused
        if self.pumping:      # _pump writes it with the others of its loop, then re-arms
            self.out.append(frame)
            return
        self.transport.write(frame)
        self._arm()
        if not more:
            self._pump()

    def _flush(self) -> None:
        """Write the answers _pump's loop gave, in order, at once."""
        out = self.out
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if not self.closed:
            self.transport.write(data)
            self._arm()

    def _close(self) -> None:
        if not self.closed:
            if self.out:          # answers already given go out before the close
                self._flush()
            self.closed = True
            self.pending.clear()
            if self.transport:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        for t in (self.timer, self.send_timer):
            if t is not None:
                t.cancel()
        self.timer = self.send_timer = None
        self.pending.clear()
        if self.client is not None:
            self.path.tcp_client_gone(self.client)
        host = self.counted_host
        if host is not None:
            self.per_client[host] -= 1
            if self.per_client[host] <= 0:
                del self.per_client[host]
            c = self.fe.tcp_counters
            c["tcpCurrentConnections"] = c.get("tcpCurrentConnections", 1) - 1
            # dnsdist's moving averages over closed connections (showTCPStats), ms for duration;
            # its query count is of the queries read (d_queriesCount), answered or not
            c["tcpAvgQueriesPerConnection"] = (99 * c.get("tcpAvgQueriesPerConnection", 0)
                                               + self.received) / 100
            c["tcpAvgConnectionDuration"] = (99 * c.get("tcpAvgConnectionDuration", 0) + 1000
                                             * (time.monotonic() - self.started)) / 100
            self.counted_host = None
        self.closed = True
