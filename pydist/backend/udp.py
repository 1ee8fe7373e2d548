"""UDP to a backend: connected sockets, the 16-bit ID slot table, and the timeout sweep."""
from __future__ import annotations

import socket
from typing import Any, Callable

from pydist.backend.server import DownstreamState
from pydist.dns.netmask import family_of
from pydist.transport import Transport
from pydist.verdict import FORWARD

DRAIN_BUDGET = 256


class InFlight:
    """One query waiting for its backend answer (lives only for the round trip). `sink` is the
    frontend that forwarded it (it sends the answer: see pydist/frontend/sink.py) and `out` what
    that frontend answers through (the UDP socket, or its pktinfo/proxy stand-in)."""
    __slots__ = ("orig_id", "client", "frontend", "question", "sent", "sent_tick",
                 "cache", "cache_key", "query", "qname_end", "flags", "transport", "sink", "out",
                 "ecs", "zero", "server", "wire", "proxy", "xfr")
    # A FORWARD verdict is the in-flight state itself (pydist/verdict.py: no second object per
    # forwarded query): `server`, the prepared query `wire`, the `proxy` header, `xfr`.
    kind = FORWARD

    @property
    def state(self) -> "InFlight":
        return self

    def __init__(self, orig_id: bytes, client: Any, frontend: Any, question: bytes,
                 sent: float, sent_tick: int, cache: Any, cache_key: Any, query: bytes,
                 qname_end: int, flags: int, transport: Transport = Transport.DO53_UDP) -> None:
        self.orig_id = orig_id
        self.client = client
        self.frontend = frontend
        self.question = question
        self.sent = sent
        self.sent_tick = sent_tick
        self.cache = cache
        self.cache_key = cache_key
        self.query = query
        self.qname_end = qname_end
        self.flags = flags
        self.transport = transport
        self.sink: Any = None
        self.out: Any = None


def answer_matches(data: bytes, question: bytes, allow_empty: bool, stats: Any) -> bool:
    """dnsdist's responseContentMatches, for UDP and TCP answers alike: a response (QR set),
    for the question asked (name compared without case, type, class); a header-only answer
    only when its rcode is not NOERROR/NXDOMAIN, or setAllowEmptyResponse is on. Refusals
    other than another question count as noncompliant-responses."""
    if len(data) < 12 or not data[2] & 0x80:
        stats.noncompliant_responses += 1
        return False
    if data[5] == 0 and data[4] == 0:
        if (data[3] & 0x0F) in (0, 3) and not allow_empty:
            stats.noncompliant_responses += 1
            return False
        return True
    got = data[12:12 + len(question)]
    return got == question or got.lower() == question.lower()


def unconnected_socket(server: DownstreamState) -> socket.socket:
    """A non-blocking UDP socket for the backend, bound to its `source` address if any."""
    s = socket.socket(family_of(server.host), socket.SOCK_DGRAM)
    s.setblocking(False)
    src = server.options.get("source") or ""
    if src and "@" not in src:
        try:
            s.bind((src, 0))
        except OSError:
            pass
    return s


def connect_error(server: DownstreamState) -> str | None:
    """dnsdist's log line when the backend's socket cannot be connected (no route: an offline
    host, a v6 server on a v4-only host), else None. A UDP connect sends nothing; dnsdist
    logs this and keeps serving, the server's health checks then mark it down."""
    s = unconnected_socket(server)
    try:
        s.connect(server.addr)
    except OSError as e:
        where = server.address_str
        return (f"Error connecting to new server with address {where}: "
                f"connecting socket to {where}: {e.strerror}")
    finally:
        s.close()
    return None


class BackendUDP:
    """The sockets to one backend and its ID table, as dnsdist's DownstreamState::idStates."""

    def __init__(self, loop: Any, server: DownstreamState, max_outstanding: int,
                 on_response: Callable[[DownstreamState, bytes, InFlight], None],
                 stats: Any, settings: Any) -> None:
        self.loop = loop
        self.server = server
        self.size = max(1, min(max_outstanding, 65535))
        self.inflight: dict[int, InFlight] = {}
        self.counter = 0
        self.on_response = on_response
        self.stats = stats
        self.settings = settings
        n = max(1, int(server.options.get("sockets") or 1))
        self.socks: list[socket.socket] = []
        for _ in range(n):
            s = unconnected_socket(server)
            try:
                s.connect(server.addr)
            except OSError:
                pass    # logged by newServer (connect_error); sends fail and count as errors
            loop.add_reader(s.fileno(), self._drain, s)
            self.socks.append(s)
        self.next_sock = 0

    def send(self, query: bytes, state: InFlight, proxy: bytes = b"") -> bool:
        """Take a slot, rewrite the ID, send (after a proxy protocol header when given). Slot
        reuse counts as a timeout, as in dnsdist."""
        server = self.server
        sid = self.counter % self.size
        self.counter += 1
        inflight = self.inflight
        if sid in inflight:
            server.reuseds += 1
            self.stats.downstream_timeouts += 1
        else:
            server.outstanding += 1
        inflight[sid] = state
        socks = self.socks
        sock = socks[self.next_sock]
        if len(socks) > 1:
            self.next_sock = (self.next_sock + 1) % len(socks)
        try:
            if proxy:
                sock.send(proxy + sid.to_bytes(2, "big") + query[2:])
            else:
                sock.send(sid.to_bytes(2, "big") + query[2:])
        except OSError:
            server.send_errors += 1
            self.stats.downstream_send_errors += 1
            del inflight[sid]
            server.outstanding -= 1
            return False
        server.queries += 1
        return True

    def _drain(self, sock: socket.socket) -> None:
        recv = sock.recv
        inflight = self.inflight
        stats = self.stats
        for _ in range(DRAIN_BUDGET):
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP unreachable and friends: the query will time out
            if len(data) < 12 or not data[2] & 0x80:
                stats.noncompliant_responses += 1
                continue
            sid = (data[0] << 8) | data[1]
            state = inflight.get(sid)
            if state is None:
                continue
            if not answer_matches(data, state.question, self.settings.allow_empty_response,
                                  stats):
                continue
            del inflight[sid]
            self.server.outstanding -= 1
            self.on_response(self.server, data, state)

    def sweep(self, tick: int, udp_timeout: int, on_timeout: Callable[[InFlight, Any], None]) -> None:
        """Expire slots as dnsdist's once-a-second ageing does (3-4 s with the default 2)."""
        limit = udp_timeout + 2
        expired = [sid for sid, st in self.inflight.items() if tick - st.sent_tick >= limit]
        for sid in expired:
            st = self.inflight.pop(sid)
            self.server.outstanding -= 1
            self.server.reuseds += 1
            self.stats.downstream_timeouts += 1
            on_timeout(st, self.server)

    def close(self) -> None:
        for s in self.socks:
            try:
                self.loop.remove_reader(s.fileno())
            except Exception:
                pass
            s.close()
        self.socks = []
