"""The backend layer between the query step and the backends: it sends what a FORWARD verdict
holds (UDP socket or TCP/DoT connection pool), and hands each answer, once the response step
has made it the bytes to send, back to the frontend that forwarded the query (`state.sink`)."""
from __future__ import annotations

from typing import Any, Callable

from pydist.backend.udp import InFlight
from pydist.dns.proxyprotocol import header_for_query
from pydist.transport import DOH, UDP_PATH, Transport


class BackendDispatch:
    """One per packet path; BackendUDP calls `udp_answer`, the sweep `timed_out`."""

    def __init__(self, path: Any) -> None:
        self.path = path

    def forward(self, st: InFlight, sink: Any, out: Any = None) -> bool:
        """Send a FORWARD verdict's query (the in-flight state `st`); False when it could not
        be sent (the frontend drops it).
        `sink` is the frontend answering it (pydist/frontend/sink.py), `out` what it answers
        through (UDP: the socket or its stand-in)."""
        st.sink = sink
        st.out = out
        server = st.server
        udp = st.transport in UDP_PATH
        if udp and not server.tcp_only:
            backend = server.udp
            if backend is None:
                return False
            if st.proxy is None:
                return backend.send(st.wire, st)
            return backend.send(st.wire, st, st.proxy)
        pool = server.tcp_pool
        if pool is None:
            return False
        on_answer = self._on_tcp_answer(server, st, st.xfr)
        proxy = st.proxy or b""
        # a proxied query from a TCP client: a connection only this client uses (dnsdist 1.7.3)
        owner = None if udp or st.proxy is None else st.client
        if server.x_forwarded:   # a DoH server with addXForwardedHeaders: who asked, and how
            pool.query(st.wire, on_answer, proxy, owner, forwarded_for(st))
        else:
            pool.query(st.wire, on_answer, proxy, owner)
        return True

    def udp_answer(self, server: Any, data: bytes, st: InFlight, backend_flags: int = -1,
                   now: float = 0.0) -> None:
        """A UDP backend answer matched its slot (`backend_flags` >= 0: the client's ID and
        flags are already in it, these were the backend's; `now`: when it was read, or 0)."""
        if data[2] & 0x02 and st.transport is DOH and server.tcp_pool is not None:
            return self._doh_retry_over_tcp(server, st)
        resp, delay = self.path.udp_response_step(server, data, st, backend_flags, now)
        if resp is not None:
            st.sink.answer(st, resp, delay)

    def _doh_retry_over_tcp(self, server: Any, st: InFlight) -> None:
        """A TC=1 answer to a DoH query: as dnsdist 1.7.3, asked again over TCP to the same
        server, and the DoH client gets that answer."""
        proxy = header_for_query(st.client, st.frontend, True, None) if server.use_proxy \
            else b""
        server.tcp_pool.query(st.query, lambda resp, more=False: self.tcp_answer(server, resp, st),
                              proxy, None)

    def tcp_answer(self, server: Any, data: bytes | None, st: InFlight) -> None:
        resp = self.path.tcp_response_step(server, data, st)
        if resp is None:
            st.sink.end(st)
        else:
            st.sink.answer(st, resp, 0)

    @staticmethod
    def xfr_answer(data: bytes | None, st: InFlight, more: bool = False) -> None:
        """One message of a zone transfer: relayed as it came with the client's ID, as dnsdist
        1.7.3 does (no response rules, no counters, no latency sample, never cached). After
        the last one dnsdist never frees the query's place on the client connection, which it
        then closes (observed): the end of the transfer ends the connection here too."""
        if data is not None:
            st.sink.answer_part(st, st.orig_id + data[2:])
        if data is None or not more:
            st.sink.end(st)

    def _on_tcp_answer(self, server: Any, st: InFlight, xfr: bool) -> Callable[..., None]:
        """What the backend's TCP connection calls with the answer (each message of a zone
        transfer, `more` set on all but the last)."""
        if xfr:
            return lambda resp, more=False: self.xfr_answer(resp, st, more)
        # a transfer asked over UDP (towards a TCP-only backend): its last message only
        return lambda resp, more=False: None if more else self.tcp_answer(server, resp, st)

    def timed_out(self, st: InFlight, server: Any = None) -> None:
        """A UDP query that never got its answer (the sweep): ringed, its frontend told."""
        self.path.timed_out(st, server)
        st.sink.timed_out(st)


def forwarded_for(st: InFlight) -> tuple[str, int, bytes]:
    """x-forwarded-for, -port and -proto of a query, as dnsdist 1.7.3 names its frontends."""
    t = st.transport
    if t is Transport.DOH:
        proto = b"dns-over-https" if st.frontend.decl.tls is not None else b"dns-over-http"
    elif t is Transport.DOT:
        proto = b"dns-over-tls"
    elif t.is_udp:
        proto = b"dns-over-udp"
    else:
        proto = b"dns-over-tcp"
    return str(st.client[0]), int(st.client[1]), proto
