"""DoT to a backend (newServer{tls="openssl"}): the TCP pool's connections on the TLS layer.

Connection reuse, retries, timeouts and their counters are BackendTCPPool's, unchanged; this
module adds the handshake (inside tcpConnectTimeout), session resumption (tlsResumptions), one
log line per new reason a handshake fails, and the TLS exchange the health checks use.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydist.backend.server import DownstreamState
from pydist.backend.tcp import BackendConnection, BackendTCPPool
from pydist.tls.backend_context import BackendTLS
from pydist.tls.layer import TLSLayer


class TLSHandshakeError(OSError):
    """The TLS handshake with a backend failed; the text says why (certificate verdict...)."""


def note_failure(server: DownstreamState, why: str, log: Callable[[str], None]) -> None:
    """Log a failing handshake once per new reason, so an operator sees why a server is down."""
    tls: BackendTLS = server.tls
    if why != tls.last_failure:
        tls.last_failure = why
        log(f"TLS handshake with backend {server.name_with_addr()} failed: {why}")


async def open_tls(loop: Any, server: DownstreamState, inner: asyncio.Protocol,
                   log: Callable[[str], None], resume: bool = True) -> TLSLayer:
    """Connect, run the handshake, return the layer. :raises TLSHandshakeError, OSError:"""
    layer = server.tls.new_layer(inner, resume)
    try:
        await loop.create_connection(lambda: layer, server.host, server.port)
        result = await layer.handshake
    except asyncio.CancelledError:
        layer.abort()
        raise
    if result is not True:
        note_failure(server, str(result), log)
        raise TLSHandshakeError(str(result))
    server.tls.last_failure = ""
    if layer.session_reused():
        server.tls_resumptions += 1
    return layer


class TLSBackendPool(BackendTCPPool):
    """BackendTCPPool whose new connections are TLS ones."""

    def __init__(self, loop: Any, server: DownstreamState, log: Callable[[str], None]) -> None:
        super().__init__(loop, server)
        self.log = log

    async def _open(self) -> BackendConnection:
        conn = BackendConnection(self)
        await open_tls(self.loop, self.server, conn, self.log)
        return conn

    def release(self, conn: BackendConnection) -> None:
        if conn.queries == 1:      # its session (TLS 1.3: the ticket) has arrived by now
            self.server.tls.keep_session(conn.transport)
        super().release(conn)


class _OneAnswer(asyncio.Protocol):
    """Reads one length-prefixed answer into a future (health checks)."""

    def __init__(self, fut: asyncio.Future[bytes]) -> None:
        self.fut = fut
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= 2:
            n = (self.buf[0] << 8) | self.buf[1]
            if len(self.buf) >= 2 + n and not self.fut.done():
                self.fut.set_result(bytes(self.buf[2:2 + n]))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.fut.done():
            self.fut.set_exception(ConnectionError("TLS connection closed by remote end"))


async def tls_exchange(server: DownstreamState, query: bytes, log: Callable[[str], None]) -> bytes:
    """One health-check query over a fresh TLS connection, apart from the query connections'
    sessions: as in dnsdist 1.7.3, checks neither resume one nor count in tlsResumptions."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()
    try:
        layer = await open_tls(loop, server, _OneAnswer(fut), log, resume=False)
    except BaseException:
        fut.cancel()       # the reader's connection_lost comes later: nobody will await it
        raise
    try:
        layer.write(len(query).to_bytes(2, "big") + query)
        return await fut
    finally:
        layer.close()
