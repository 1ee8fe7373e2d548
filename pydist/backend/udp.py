"""UDP to a backend: connected sockets, the 16-bit ID slot table, and the timeout sweep."""
from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Callable

from pydist.backend.server import DownstreamState
from pydist.cache import hold_inserts, release_inserts
from pydist.dns.netmask import family_of
from pydist.net import mmsg
from pydist.transport import DO53_UDP, Transport
from pydist.verdict import FORWARD

if TYPE_CHECKING:
    from mmap import mmap

DRAIN_BUDGET = 256        # answers read per wake-up before others get the loop
RECV_BATCH = 32           # answers per recvmmsg
SEND_BATCH = 64           # queries per sendmmsg
MAX_ANSWER = 65536        # a UDP answer's room (untouched pages of it cost no memory)


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
    temp_failure_ttl: int | None = None   # SetTempFailureCacheTTL's, set on a RuleInFlight

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
    """The sockets to one backend and its ID table, as dnsdist's DownstreamState::idStates.

    Batched where the platform allows (pydist/net/mmsg.py): each socket is drained with
    recvmmsg, and the queries of plain UDP clients are gathered over the loop's round and
    leave in one sendmmsg per socket (other transports' queries are sent at once: their
    frontends act on a failed send)."""

    def __init__(self, loop: Any, server: DownstreamState, max_outstanding: int,
                 on_response: Callable[[DownstreamState, bytes, InFlight, int, float], None],
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
        self.receivers: dict[socket.socket, mmsg.Receiver] = {}
        self.senders: dict[socket.socket, mmsg.Sender] = {}
        self.flush_due = False
        for _ in range(n):
            s = unconnected_socket(server)
            try:
                s.connect(server.addr)
            except OSError:
                pass    # logged by newServer (connect_error); sends fail and count as errors
            if mmsg.batchable(s):
                self.receivers[s] = mmsg.Receiver(s, RECV_BATCH, MAX_ANSWER, False)
                self.senders[s] = mmsg.Sender(s, SEND_BATCH, False, self._send_failed,
                                              wait_when_full=False)
            loop.add_reader(s.fileno(), self._drain, s)
            self.socks.append(s)
        self.next_sock = 0

    def send(self, query: bytes, state: InFlight, proxy: bytes = b"") -> bool:
        """Take a slot, rewrite the ID, send (after a proxy protocol header when given). Slot
        reuse counts as a timeout, as in dnsdist. A plain UDP client's query is gathered for
        its socket's sendmmsg (sent once the loop has run what is ready); a failure to send
        it is then counted as a failed send is."""
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
        wire = proxy + sid.to_bytes(2, "big") + query[2:] if proxy else \
            sid.to_bytes(2, "big") + query[2:]
        server.queries += 1
        sender = self.senders.get(sock) if state.transport is DO53_UDP else None
        if sender is not None:
            datas = sender.datas        # Sender.add written out: every miss comes here
            datas.append(wire)
            sender.tags.append((sid, state))
            if len(datas) >= sender.count:
                sender.flush()
            if not self.flush_due:
                self.flush_due = True
                self.loop.call_soon(self.flush)
            return True
        try:
            sock.send(wire)
        except OSError:
            self._send_failed((sid, state), 0)
            return False
        return True

    def flush(self) -> None:
        """Send the gathered queries, one sendmmsg per socket."""
        self.flush_due = False
        for sender in self.senders.values():
            if sender.datas:
                sender.flush()

    def _send_failed(self, tag: tuple[int, InFlight], err: int) -> None:
        """A query the kernel refused: counted as dnsdist counts a failed send, its slot
        freed."""
        sid, state = tag
        server = self.server
        server.queries -= 1
        server.send_errors += 1
        self.stats.downstream_send_errors += 1
        if self.inflight.get(sid) is state:
            del self.inflight[sid]
            server.outstanding -= 1

    def _drain(self, sock: socket.socket) -> None:
        rx = self.receivers.get(sock)
        if rx is not None:
            return self._drain_batched(rx)
        recv = sock.recv
        take = self._take
        for _ in range(DRAIN_BUDGET):
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP unreachable and friends: the query will time out
            state = take(data, 0, len(data))
            if state is not None:
                self.on_response(self.server, data, state, -1, 0.0)

    def _drain_batched(self, rx: mmsg.Receiver) -> None:
        """recvmmsg until empty (bounded). Each answer's client ID and flags are put back in
        its slot before it is read out, so the bytes taken out are the ones to relay. The
        clock is read once per recvmmsg: every answer of it arrived by then."""
        hold_inserts()      # cache inserts that need a shard hash: hashed together at the end
        try:
            self._drain_rounds(rx)
        finally:
            release_inserts()

    def _drain_rounds(self, rx: mmsg.Receiver) -> None:
        buf, slot = rx.buf, rx.slot_size
        take = self._take
        server = self.server
        on_response = self.on_response
        clock = time.time
        full = rx.count
        budget = DRAIN_BUDGET
        while budget > 0:
            try:
                lens = rx.recv()
            except OSError:
                budget -= 1
                continue  # ICMP unreachable and friends: the query will time out
            if not lens:
                return
            now = clock()
            budget -= len(lens)
            off = -slot
            for n in lens:
                off += slot
                st = take(buf, off, n)
                if st is None:
                    continue
                f = st.flags            # the response step's restore, done in place
                hi, lo = buf[off + 2], buf[off + 3]
                buf[off:off + 2] = st.orig_id
                buf[off + 2] = (hi & 0xFE) | ((f >> 8) & 0x01)
                buf[off + 3] = (lo & 0xEF) | (f & 0x10)
                on_response(server, buf[off:off + n], st, (hi << 8) | lo, now)
            if len(lens) < full:
                return      # a short read emptied the socket: no second, empty recvmmsg

    def _take(self, buf: bytes | mmap, off: int, n: int) -> InFlight | None:
        """The answer at buf[off:off + n] as it came from the backend: its in-flight state,
        the slot freed; None when it answers nothing we wait for (noncompliant ones counted).
        Both drains use it (the batched one on its receive buffer, without a copy)."""
        if n < 12 or not buf[off + 2] & 0x80:
            self.stats.noncompliant_responses += 1
            return None
        sid = (buf[off] << 8) | buf[off + 1]
        state = self.inflight.get(sid)
        if state is None:
            return None
        q = state.question          # answer_matches' usual outcome first: the question
        if not ((buf[off + 4] or buf[off + 5]) and buf[off + 12:off + 12 + len(q)] == q) \
                and not answer_matches(buf[off:off + n], q, self.settings.allow_empty_response,
                                       self.stats):
            return None
        del self.inflight[sid]
        self.server.outstanding -= 1
        return state

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
        self.flush()
        for s in self.socks:
            try:
                self.loop.remove_reader(s.fileno())
            except Exception:
                pass
            s.close()
        for batcher in (*self.receivers.values(), *self.senders.values()):
            batcher.close()
        self.receivers, self.senders = {}, {}
        self.socks = []
