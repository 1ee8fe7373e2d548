"""DoT frontend (addTLSLocal): the TCP frontend's protocol on top of the TLS layer.

The DNS side is TCPClientConnection unchanged (framing, limits, the shared packet path with the
TCP cache key, as dnsdist keys DoT like TCP); this module adds the TLS layer under it and the
per-query TLS version counters dnsdist keeps per frontend.
"""
from __future__ import annotations

from typing import Any

from pydist.frontend.tcp import TCPClientConnection
from pydist.tls.frontend_context import FrontendTLS, version_counter
from pydist.tls.layer import TLSLayer
from pydist.verdict import QueryOrigin


class TLSClientConnection(TCPClientConnection):
    """A DoT client: counts each query under the TLS version of its connection."""

    def __init__(self, path: Any, fe: Any, per_client: dict[str, int], tls: FrontendTLS) -> None:
        super().__init__(path, fe, per_client)
        self.tls = tls
        self.version_counter = ""      # known once the handshake is done

    @property
    def sni(self) -> str:
        """The server name the client asked for in its TLS hello (SNIRule, dq's SNI)."""
        return getattr(self.transport, "sni", None) or ""

    def origin(self) -> QueryOrigin:
        """The SNI (SNIRule, dq's SNI) and the proxy protocol TLVs."""
        return QueryOrigin(self.sni, None, self.proxy_values)

    def _start(self, q: bytes) -> None:
        if not self.version_counter:
            self.version_counter = version_counter(self.transport.version())
        self.tls.counters[self.version_counter] += 1
        super()._start(q)


def make_tls_protocol(path: Any, fe: Any, per_client: dict[str, int], tls: FrontendTLS,
                      log_errors: bool = False) -> TLSLayer:
    """The protocol factory for one DoT listener: a TLS layer over the current context."""
    inner = TLSClientConnection(path, fe, per_client, tls)

    def failed(layer: TLSLayer, why: str) -> None:
        """As dnsdist 1.7.3: a connection that never completed its handshake 'died reading
        the query', plus one of the handshake-failure causes when OpenSSL gave one."""
        tls.handshake_failed(layer, why)
        counters = fe.tcp_counters
        counters["tcpDiedReadingQuery"] = counters.get("tcpDiedReadingQuery", 0) + 1
        if log_errors:
            peer = layer.get_extra_info("peername")
            path.reg.log(f"Error while processing TLS connection from {peer}: {why}")
    return tls.new_layer(inner, tls.handshake_done, failed)


# in a worker process the supervisor rotates the keys and sends them (pydist.workers.tickets)
ROTATED_ELSEWHERE = False


def schedule_ticket_rotation(loop: Any, tls: FrontendTLS) -> None:
    """Rotate the tickets key every ticketsKeysRotationDelay seconds, as dnsdist does."""
    delay = tls.rotation_delay()
    if delay <= 0 or ROTATED_ELSEWHERE:
        return

    def rotate() -> None:
        try:
            tls.rotate_ticket_key()
        except Exception as e:  # files gone since startup: keep the current context
            tls.log(f"Error rotating the TLS tickets key: {e}")
        loop.call_later(delay, rotate)
    loop.call_later(delay, rotate)
