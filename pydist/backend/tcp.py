"""TCP to a backend: length-prefixed queries over reused connections, with retries and timeouts."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pydist.backend.server import DownstreamState
from pydist.backend.xfr import XFRProgress, is_xfr

Reply = Callable[..., None]
"""reply(answer or None); for a zone transfer's messages before the last, reply(answer, True)."""


class BackendConnection(asyncio.Protocol):
    """One connection to a backend. Answers are matched to queries by ID, so a backend with
    maxInFlight > 1 may answer in any order; an answer whose ID matches nothing in flight
    ends the connection and its queries without retry (as dnsdist 1.7.3 does). A zone
    transfer keeps its ID until its last message (backend/xfr.py)."""

    def __init__(self, pool: BackendTCPPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: dict[bytes, tuple[bytes, Reply, int]] = {}   # by the 2 ID bytes
        self.xfr: dict[bytes, XFRProgress] = {}     # the zone transfers among them
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.started = time.monotonic()
        self.queries = 0
        self.proxy = b""     # a proxy protocol connection: header sent first, never shared
        self.owner: Any = None   # the TCP client it belongs to (proxy protocol), else None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def can_take(self, query: bytes) -> bool:
        """Room for one more query whose ID is not already in flight here."""
        return (not self.closed and len(self.pending) < self.pool.max_in_flight
                and query[:2] not in self.pending)

    def send(self, query: bytes, reply: Reply, attempt: int) -> None:
        self.pending[query[:2]] = (query, reply, attempt)
        if is_xfr(query):
            self.xfr[query[:2]] = XFRProgress()
        self.queries += 1
        data = len(query).to_bytes(2, "big") + query
        if self.proxy and self.queries == 1:      # proxy protocol: the header opens the stream
            data = self.proxy + data
        self.transport.write(data)
        buffered = getattr(self.transport, "get_write_buffer_size", None)
        if buffered is not None and buffered():      # the kernel did not take it all: watch it
            self.pool.loop.call_later(self.pool.send_timeout, self._send_check)
        if self.timer is None:
            self.timer = self.pool.loop.call_later(self.pool.recv_timeout, self._timeout)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            n = (self.buf[0] << 8) | self.buf[1]
            if len(self.buf) < 2 + n:
                return
            resp = bytes(self.buf[2:2 + n])
            del self.buf[:2 + n]
            key = resp[:2]
            xfr = self.xfr.get(key) if self.xfr else None
            if xfr is not None and len(resp) >= 12 and not xfr.finished(resp):
                self._rearm()                  # a transfer's message, more to come
                self._deliver(self.pending[key][1], resp, True)
                continue
            self.xfr.pop(key, None)
            entry = self.pending.pop(key, None)
            if entry is None:          # unexpected answer (wrong ID, or nothing asked)
                self._fail(retry=False)
                return
            self._rearm()
            self.pool.release(self)
            self._deliver(entry[1], resp)

    def _deliver(self, reply: Reply, resp: bytes | None, more: bool = False) -> None:
        """Hand an answer to its client side. Whatever goes wrong there is that client's
        problem: this connection, shared by other clients' queries, carries on."""
        try:
            if more:
                reply(resp, True)
            else:
                reply(resp)
        except Exception as e:  # noqa: BLE001 -- isolation boundary between connections
            self.pool.loop.call_exception_handler({
                "message": f"Error relaying an answer from {self.pool.server.address_str}",
                "exception": e})

    def _rearm(self) -> None:
        """The receive timeout runs while something is in flight, from the last answer."""
        if self.timer:
            self.timer.cancel()
        self.timer = (self.pool.loop.call_later(self.pool.recv_timeout, self._timeout)
                      if self.pending else None)

    def _send_check(self) -> None:
        """tcpSendTimeout: a query still not written out by then fails the connection."""
        if not self.closed and self.pending and self.transport.get_write_buffer_size():
            self.pool.server.tcp["tcpWriteTimeouts"] += 1
            self._fail()

    def _timeout(self) -> None:
        self.timer = None
        self.pool.server.tcp["tcpReadTimeouts"] += 1
        self._fail()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.pending:
            self.pool.server.tcp["tcpDiedReadingResponse"] += 1
            self._fail()

    def _fail(self, retry: bool = True) -> None:
        """Close; every query in flight here is retried (or given up when retry is False)."""
        pending, self.pending = self.pending, {}
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if self.transport and not self.closed:
            self.closed = True
            self.transport.close()
        started = {k for k, x in self.xfr.items() if x.started}
        self.xfr = {}
        for key, (query, reply, attempt) in pending.items():
            if retry and key not in started:   # a transfer half relayed is not sent again
                self.pool.retry(query, reply, attempt, self.proxy, self.owner)
            else:
                self._deliver(reply, None)


class BackendTCPPool:
    """Idle connections to one backend, reused across queries (dnsdist's downstream cache)."""

    MAX_IDLE = 10

    def __init__(self, loop: Any, server: DownstreamState) -> None:
        self.loop = loop
        self.server = server
        self.idle: list[BackendConnection] = []
        self.live: set[BackendConnection] = set()
        self.owned: dict[bytes, BackendConnection] = {}     # proxied, by their header
        opts = server.options
        self.max_in_flight = max(1, int(opts.get("maxInFlight") or 1))
        self.opening: list[tuple[bytes, Reply, int]] | None = None   # riders of a connect
        self.connect_timeout = float(opts.get("tcpConnectTimeout") or 5)
        self.recv_timeout = float(opts.get("tcpRecvTimeout") or 30)
        self.send_timeout = float(opts.get("tcpSendTimeout") or 30)
        self.retries = int(opts.get("retries") if opts.get("retries") is not None else 5)

    def query(self, query: bytes, reply: Reply, proxy: bytes = b"", owner: Any = None) -> None:
        """Send one query; reply(response) or reply(None) once retries are exhausted. With a
        proxy protocol header: on a connection that carries the header first and serves only
        the TCP client `owner` (as dnsdist 1.7.3), or only this query when owner is None."""
        self.server.queries += 1
        self._attempt(query, reply, 0, proxy, owner)

    def _attempt(self, query: bytes, reply: Reply, attempt: int, proxy: bytes = b"",
                 owner: Any = None) -> None:
        if proxy:
            conn = self.owned.get(proxy) if owner is not None else None
            if conn is not None and conn.can_take(query):
                self.server.tcp["tcpReusedConnections"] += 1
                conn.send(query, reply, attempt)
                return
            self.loop.create_task(self._connect_and_send([(query, reply, attempt)], proxy, owner))
            return
        self.idle = [c for c in self.idle if not c.closed]
        for conn in reversed(self.idle):
            if conn.can_take(query):
                self.server.tcp["tcpReusedConnections"] += 1
                conn.send(query, reply, attempt)
                if len(conn.pending) >= self.max_in_flight:
                    self.idle.remove(conn)
                return
        if self.max_in_flight > 1 and self._ride(query, reply, attempt):
            return
        riders = [(query, reply, attempt)]
        if self.max_in_flight > 1:
            self.opening = riders      # set now: the next query may come before the task runs
        self.loop.create_task(self._connect_and_send(riders))

    def _ride(self, query: bytes, reply: Reply, attempt: int) -> bool:
        """maxInFlight > 1: wait for the connection being opened rather than open another."""
        riders = self.opening
        if riders is None or len(riders) >= self.max_in_flight \
                or any(q[:2] == query[:2] for q, _, _ in riders):
            return False
        riders.append((query, reply, attempt))
        return True

    async def _connect_and_send(self, riders: list[tuple[bytes, Reply, int]],
                                proxy: bytes = b"", owner: Any = None) -> None:
        """Open a connection and send the query that asked for it, plus any that rode along.
        A proxied one (proxy protocol header) starts with its header and, with an owner, is
        kept for that TCP client only."""
        try:
            conn = await asyncio.wait_for(self._open(), self.connect_timeout)
        except TimeoutError:
            self.server.tcp["tcpConnectTimeouts"] += 1
            self._retry_all(riders, proxy, owner)
            return
        except OSError:
            self.server.tcp["tcpDiedSendingQuery"] += 1
            self._retry_all(riders, proxy, owner)
            return
        if self.opening is riders:
            self.opening = None
        tcp = self.server.tcp
        tcp["tcpNewConnections"] += 1
        self.live.add(conn)
        tcp["tcpCurrentConnections"] = len(self.live)
        tcp["tcpMaxConcurrentConnections"] = max(tcp["tcpMaxConcurrentConnections"], len(self.live))
        if proxy:
            conn.proxy, conn.owner = proxy, owner
            if owner is not None:
                self.owned[proxy] = conn
        for q, r, a in riders:
            conn.send(q, r, a)
        if self.max_in_flight > 1 and not proxy:   # room left for others' queries right away
            self.release(conn)

    def _retry_all(self, riders: list[tuple[bytes, Reply, int]], proxy: bytes = b"",
                   owner: Any = None) -> None:
        if self.opening is riders:
            self.opening = None
        for q, r, a in riders:
            self.retry(q, r, a, proxy, owner)

    async def _open(self) -> BackendConnection:
        """A new connected BackendConnection (the TLS pool adds its handshake here)."""
        _, conn = await self.loop.create_connection(lambda: BackendConnection(self),
                                                    self.server.host, self.server.port)
        return conn

    def retry(self, query: bytes, reply: Reply, attempt: int, proxy: bytes = b"",
              owner: Any = None) -> None:
        if attempt + 1 < max(1, self.retries):
            self._attempt(query, reply, attempt + 1, proxy, owner)
            return
        self.server.tcp["tcpGaveUp"] += 1
        reply(None)

    def release(self, conn: BackendConnection) -> None:
        """conn has room again (an answer came back, or maxInFlight allows more)."""
        if conn.proxy:     # never shared: kept only while its TCP client owns it
            if (conn.owner is None or conn.closed or self.owned.get(conn.proxy) is not conn) \
                    and conn.transport and not conn.pending:
                conn.transport.close()
            return
        if conn in self.idle:
            return
        if not conn.closed and len(self.idle) < self.MAX_IDLE:
            self.idle.append(conn)
        elif conn.transport and not conn.pending:
            conn.transport.close()

    def forget(self, conn: BackendConnection) -> None:
        tcp = self.server.tcp
        if conn in self.live:
            # dnsdist's moving averages over closed connections (showTCPStats), ms for duration
            tcp["tcpAvgQueriesPerConnection"] = (99 * tcp.get("tcpAvgQueriesPerConnection", 0)
                                                 + conn.queries) / 100
            tcp["tcpAvgConnectionDuration"] = (99 * tcp.get("tcpAvgConnectionDuration", 0) + 1000
                                               * (time.monotonic() - conn.started)) / 100
        self.live.discard(conn)
        tcp["tcpCurrentConnections"] = len(self.live)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.proxy and self.owned.get(conn.proxy) is conn:
            del self.owned[conn.proxy]

    def drop_owner(self, owner: Any) -> None:
        """The TCP client went away: close the proxied connections that served it."""
        for key, conn in list(self.owned.items()):
            if conn.owner == owner:
                del self.owned[key]
                conn._fail(retry=False)     # what it still had in flight was for that client

    def close(self) -> None:
        for c in list(self.live):
            if c.transport:
                c.transport.close()
