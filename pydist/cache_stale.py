"""Serve-stale and prefetch for pydist's cache extension: which entries qualify, and the
background refreshes that renew them.

Rules (RFC 8767 for stale, Unbound's prefetch for the other):
* an entry past its TTL may be served for ``staleWindow`` seconds after it expired, with a
  TTL of 30 s (RFC 8767 §5), when its rcode is eligible (NOERROR with an answer by default);
* serving it starts a background refresh; at most one refresh per key is in flight
  (single-flight), and a refresh that failed (timeout, SERVFAIL, REFUSED, no server) blocks
  new ones for that key for 30 s (RFC 8767's failure recheck), so a dead backend sees one
  query per key and half-minute, not one per client query;
* an entry hit ``minHits`` times is refreshed once when less than ``remaining`` % of its TTL is
  left, within a budget of ``qps`` prefetches per second (token bucket), so prefetches never
  crowd out client queries;
* a refresh's answer replaces the entry only when it is not SERVFAIL/REFUSED: a failing
  backend never overwrites a good stale answer.

Refresh queries go to one up server of the pool straight from their own socket (UDP, TCP when
the server is TCP-only or the answer is truncated), so they never show in the client counters,
the rings or the frontends' figures. Servers using ECS or the proxy protocol are not used for
refreshes (their answers need the client's context).
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from pydist.cache_counters import CacheCounters
from pydist.dns.wire import WireError, parse_question

if TYPE_CHECKING:
    from pydist.backend.server import DownstreamState
    from pydist.cache import PacketCache

STALE_ANSWER_TTL = 30      # RFC 8767 §5: the TTL of a stale answer
FAILURE_RECHECK = 30.0     # RFC 8767 §5: seconds before a failed refresh is tried again
_SERVFAIL, _REFUSED = 2, 5


def stale_eligible(response: bytes, rcodes: frozenset[int] | None) -> bool:
    """May this answer be served stale? ``rcodes`` None: positive answers only (NOERROR with at
    least one answer record); else any answer whose rcode is listed."""
    if len(response) < 12:
        return False
    rcode = response[3] & 0x0F
    if rcodes is None:
        return rcode == 0 and (response[6] or response[7]) != 0
    return rcode in rcodes


class TokenBucket:
    """``rate`` tokens a second, at most ``rate`` saved up: the prefetch budget."""

    __slots__ = ("rate", "tokens", "last")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Refresher:
    """Background refreshes of one cache: single-flight per key, failures held back."""

    def __init__(self, cache: PacketCache, counters: CacheCounters,
                 pick_server: Callable[[], DownstreamState | None], timeout: float,
                 log: Callable[[str], None]) -> None:
        self.cache = cache
        self.counters = counters
        self.pick_server = pick_server
        self.timeout = timeout
        self.log = log
        self.loop: asyncio.AbstractEventLoop | None = None   # set when serving starts
        self.inflight: set[tuple[bool, Any]] = set()
        self.failed: dict[tuple[bool, Any], float] = {}
        self.tasks: set[asyncio.Task] = set()

    def may_start(self, udp: bool, key: Any, now: float) -> bool:
        """No refresh of this key in flight, none failed in the last 30 s, serving started."""
        k = (udp, key)
        if self.loop is None or k in self.inflight:
            return False
        until = self.failed.get(k)
        if until is not None:
            if now < until:
                return False
            del self.failed[k]
        return True

    def start(self, udp: bool, key: Any, query: bytes, qname_end: int) -> None:
        """Refresh ``key`` in the background with ``query`` (the client's, a new ID)."""
        k = (udp, key)
        self.inflight.add(k)
        assert self.loop is not None
        task = self.loop.create_task(self._run(k, bytes(query), qname_end))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, k: tuple[bool, Any], query: bytes, qname_end: int) -> None:
        try:
            answer = await self._fetch(query)
            now = time.time()
            if answer is None or (answer[3] & 0x0F) in (_SERVFAIL, _REFUSED):
                self.counters.refresh_failures += 1
                self.failed[k] = time.monotonic() + FAILURE_RECHECK
                if len(self.failed) > 100_000:     # bounded: the oldest holds go first
                    self.failed.pop(next(iter(self.failed)))
                return
            # the client's RD and CD bits, as the packet path restores them before inserting
            answer = query[:2] + bytes(((answer[2] & 0xFE) | (query[2] & 0x01),
                                        (answer[3] & 0xEF) | (query[3] & 0x10))) + answer[4:]
            self.cache.insert(k[1], query, qname_end, k[0], answer, now)
        except Exception as e:  # noqa: BLE001 -- a refresh must never take the loop down
            self.counters.refresh_failures += 1
            self.log(f"Error refreshing a cache entry: {e}")
        finally:
            self.inflight.discard(k)

    async def _fetch(self, query: bytes) -> bytes | None:
        server = self.pick_server()
        if server is None:
            return None
        wire = os.urandom(2) + query[2:]
        answer = None
        if not server.tcp_only:
            answer = await udp_exchange(server.addr, wire, self.timeout)
            if answer is None or not answer[2] & 0x02:
                return answer if answer is None or answer[:2] == wire[:2] else None
        answer = await tcp_exchange(server.addr, wire, self.timeout)
        return answer if answer is not None and answer[:2] == wire[:2] else None

    def forget_failures(self, now: float) -> None:
        """Maintenance: drop failure holds that are over."""
        for k in [k for k, until in self.failed.items() if until <= now]:
            del self.failed[k]


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future) -> None:
        self.fut = fut

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.fut.done() and len(data) >= 12:
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_result(None)


async def udp_exchange(addr: tuple, wire: bytes, timeout: float) -> bytes | None:
    """One query over its own connected UDP socket; None on timeout or error."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: _OneAnswer(fut),
                                                           remote_addr=addr[:2])
    except OSError:
        return None
    try:
        transport.sendto(wire)
        return await asyncio.wait_for(fut, timeout)
    except (asyncio.TimeoutError, OSError):
        return None
    finally:
        transport.close()


async def tcp_exchange(addr: tuple, wire: bytes, timeout: float) -> bytes | None:
    """One query over a new TCP connection; None on timeout or error."""
    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(addr[0], addr[1])
        try:
            writer.write(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()
    try:
        return await asyncio.wait_for(exchange(), timeout)
    except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
        return None


def question_end(query: bytes) -> int | None:
    """Where the question's name ends, for a refresh started from the exact-bytes level."""
    try:
        return parse_question(query)[0]
    except WireError:
        return None
