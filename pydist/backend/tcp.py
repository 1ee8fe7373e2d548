"""TCP to a backend: length-prefixed queries over reused connections, with retries and timeouts."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from pydist.backend.server import DownstreamState

Reply = Callable[[bytes | None], None]


class BackendConnection(asyncio.Protocol):
    """One connection to a backend carrying one query at a time (maxInFlight 1)."""

    def __init__(self, pool: "BackendTCPPool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: tuple[bytes, Reply, int] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.started = time.monotonic()
        self.queries = 0
        self.proxy = b""     # a proxy protocol connection: header sent first, never shared
        self.owner: Any = None   # the TCP client it belongs to (proxy protocol), else None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def send(self, query: bytes, reply: Reply, attempt: int) -> None:
        self.pending = (query, reply, attempt)
        self.buf.clear()
        self.queries += 1
        if self.proxy and self.queries == 1:
            self.transport.write(self.proxy + len(query).to_bytes(2, "big") + query)
        else:
            self.transport.write(len(query).to_bytes(2, "big") + query)
        self.timer = self.pool.loop.call_later(self.pool.recv_timeout, self._timeout)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) < 2:
            return
        n = (self.buf[0] << 8) | self.buf[1]
        if len(self.buf) < 2 + n or self.pending is None:
            return
        resp = bytes(self.buf[2:2 + n])
        del self.buf[:2 + n]
        _, reply, _ = self.pending
        self.pending = None
        if self.timer:
            self.timer.cancel()
        self.pool.release(self)
        reply(resp)

    def _timeout(self) -> None:
        self.pool.server.tcp["tcpReadTimeouts"] += 1
        self._fail()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.pending is not None:
            self.pool.server.tcp["tcpDiedReadingResponse"] += 1
            self._fail()

    def _fail(self) -> None:
        pending, self.pending = self.pending, None
        if self.timer:
            self.timer.cancel()
        if self.transport and not self.closed:
            self.transport.close()
        if pending is not None:
            query, reply, attempt = pending
            self.pool.retry(query, reply, attempt, self.proxy, self.owner)


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
        self.connect_timeout = float(opts.get("tcpConnectTimeout") or 5)
        self.recv_timeout = float(opts.get("tcpRecvTimeout") or 30)
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
            if conn is not None and not conn.closed and conn.pending is None:
                self.server.tcp["tcpReusedConnections"] += 1
                conn.send(query, reply, attempt)
                return
            self.loop.create_task(self._connect_and_send(query, reply, attempt, proxy, owner))
            return
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self.server.tcp["tcpReusedConnections"] += 1
                conn.send(query, reply, attempt)
                return
        self.loop.create_task(self._connect_and_send(query, reply, attempt))

    async def _connect_and_send(self, query: bytes, reply: Reply, attempt: int,
                                proxy: bytes = b"", owner: Any = None) -> None:
        try:
            conn = await asyncio.wait_for(self._open(), self.connect_timeout)
        except asyncio.TimeoutError:
            self.server.tcp["tcpConnectTimeouts"] += 1
            self.retry(query, reply, attempt, proxy, owner)
            return
        except OSError:
            self.server.tcp["tcpDiedSendingQuery"] += 1
            self.retry(query, reply, attempt, proxy, owner)
            return
        tcp = self.server.tcp
        tcp["tcpNewConnections"] += 1
        self.live.add(conn)
        tcp["tcpCurrentConnections"] = len(self.live)
        tcp["tcpMaxConcurrentConnections"] = max(tcp["tcpMaxConcurrentConnections"], len(self.live))
        conn.proxy, conn.owner = proxy, owner
        if owner is not None:
            self.owned[proxy] = conn
        conn.send(query, reply, attempt)

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
        if conn.proxy:
            if (conn.owner is None or conn.closed) and conn.transport:
                conn.transport.close()
        elif not conn.closed and len(self.idle) < self.MAX_IDLE:
            self.idle.append(conn)
        elif conn.transport:
            conn.transport.close()

    def forget(self, conn: BackendConnection) -> None:
        self.live.discard(conn)
        self.server.tcp["tcpCurrentConnections"] = len(self.live)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.proxy and self.owned.get(conn.proxy) is conn:
            del self.owned[conn.proxy]

    def drop_owner(self, owner: Any) -> None:
        """The TCP client went away: close the proxied connections that served it."""
        for key, conn in list(self.owned.items()):
            if conn.owner == owner:
                del self.owned[key]
                if conn.transport:
                    conn.transport.close()

    def close(self) -> None:
        for c in list(self.live):
            if c.transport:
                c.transport.close()
