"""TCP frontend: 2-byte length framing, one query at a time per connection, dnsdist's limits."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from pydist.frontend.proxied import read_header

TCP_FRONTEND_COUNTERS = ("tcpDiedReadingQuery", "tcpDiedSendingResponse", "tcpGaveUp",
                         "tcpClientTimeouts", "tcpDownstreamTimeouts", "tcpCurrentConnections",
                         "tcpMaxConcurrentConnections")


class TCPClientConnection(asyncio.Protocol):
    """One client connection; queries are answered in order, as dnsdist does without maxInFlight."""

    ring_proto: int | str = 1            # the queries ring's protocol (grepq: DoTCP)

    def __init__(self, path: Any, fe: Any, per_client: dict[str, int]) -> None:
        self.path = path
        self.fe = fe
        self.per_client = per_client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: deque[bytes] = deque()
        self.busy = False
        self.answered = 0
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.peer: Any = None
        self.client: Any = None          # the peer, or the source its proxy protocol header names
        self.awaiting_proxy = False      # a setProxyProtocolACL source: its header comes first
        self.proxy_values: list | None = None
        self.destination: Any = None    # the real local address (wildcard listener) or proxied
        self.started = self.last_active = time.monotonic()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peer = self.client = transport.get_extra_info("peername")
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

    def _arm(self) -> None:
        """Restart the idle clock. Lazily: one timer per connection that, when it fires early,
        re-arms for what is left (a cancel + call_later per query cost ~4 us each)."""
        self.last_active = time.monotonic()
        if self.timer is None:
            self.timer = self.path.loop.call_later(self.path.settings.tcp_recv_timeout or 2,
                                                   self._idle_timeout)

    def _idle_timeout(self) -> None:
        self.timer = None
        if self.busy or self.closed:
            return                      # _reply re-arms once the answer is written
        timeout = self.path.settings.tcp_recv_timeout or 2
        left = self.last_active + timeout - time.monotonic()
        if left > 0.001:
            self.timer = self.path.loop.call_later(left, self._idle_timeout)
            return
        self.fe.tcp_counters["tcpClientTimeouts"] = self.fe.tcp_counters.get("tcpClientTimeouts", 0) + 1
        self._close()

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
        if self.awaiting_proxy:
            data = self.take_proxy_header(data)
            if not data:
                return
        self.buf += data
        while len(self.buf) >= 2:
            n = (self.buf[0] << 8) | self.buf[1]
            if len(self.buf) < 2 + n:
                break
            q = bytes(self.buf[2:2 + n])
            del self.buf[:2 + n]
            if n < 12:
                self._close()
                return
            self.pending.append(q)
        self._arm()
        self._next()

    def _next(self) -> None:
        if self.busy or not self.pending or self.closed:
            return
        limit = self.path.settings.max_tcp_queries_per_connection
        if limit and self.answered > limit:
            self._close()
            return
        q = self.pending.popleft()
        self.busy = True
        stats = self.path.stats
        stats.queries += 1
        self.fe.queries += 1
        q = self.unwrap(q)
        if q is None:
            return
        if q[2] & 0x80:
            stats.noncompliant_queries += 1
            self._close()
            return
        now = time.time()
        self.path.rings.queries.append((now, self.client, q, self.ring_proto))
        self.path.process(q, self.client, self.fe, None, False, now, self._reply)

    def unwrap(self, q: bytes) -> bytes | None:
        """The DNS query a framed message carries (DNSCrypt decrypts here); None when this
        connection dealt with it already (answered or closed)."""
        return q

    def _reply(self, resp: bytes | None) -> None:
        self.busy = False
        if self.closed:
            return
        if resp is None:
            self._close()
            return
        self.answered += 1
        self.transport.write(len(resp).to_bytes(2, "big") + resp)
        self._arm()
        self._next()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer:
            self.timer.cancel()
        if self.client is not None:
            self.path.tcp_client_gone(self.client)
        host = getattr(self, "counted_host", None)
        if host is not None:
            self.per_client[host] -= 1
            if self.per_client[host] <= 0:
                del self.per_client[host]
            c = self.fe.tcp_counters
            c["tcpCurrentConnections"] = c.get("tcpCurrentConnections", 1) - 1
            # dnsdist's moving averages over closed connections (showTCPStats), ms for duration
            c["tcpAvgQueriesPerConnection"] = (99 * c.get("tcpAvgQueriesPerConnection", 0)
                                               + self.answered) / 100
            c["tcpAvgConnectionDuration"] = (99 * c.get("tcpAvgConnectionDuration", 0) + 1000
                                             * (time.monotonic() - self.started)) / 100
            self.counted_host = None
        self.closed = True
