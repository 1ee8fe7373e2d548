"""Health checks: the I/O reports outcomes; one pure function applies rise/maxCheckFailures.

Rules (dnsdist 1.7.3, facts §2.2, checked against the real binary):
1. Every Auto server is checked once before serving; that result is applied directly.
2. Then once a second each Auto server's counter grows; at `checkInterval` it is checked.
   A check still running is not started again, and no check waits for another one.
3. An outcome is a boolean. A UDP check that gets an ICMP error yields three failed outcomes,
   as dnsdist 1.7.3 runs its failure callback three times then (so the initial check logs
   "Marking downstream ... as 'down'" three times, and maxCheckFailures=3 falls in one check).
4. With setVerboseHealthChecks(true) each failure logs dnsdist's reason line before its outcome.
"""
from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable
from typing import Any

from pydist.backend.server import AUTO, DownstreamState
from pydist.dns.netmask import family_of
from pydist.dns.proxyprotocol import LOCAL_HEADER
from pydist.dns.reader import name_end
from pydist.dns.wire import WireError, name_to_text, qtype_from_text, qtype_to_text, text_to_wire

Outcome = tuple[bool, str]          # (success, verbose reason when it failed)
CheckFunction = Callable[[bytes, int, int, bytearray], tuple[bytes, int, int]]


def update_health(server: DownstreamState, ok: bool, initial: bool,
                  log: Callable[[str], None]) -> None:
    """dnsdist's updateHealthCheckResult: apply one check outcome, log a state change."""
    if initial:
        log(f"Marking downstream {server.name_with_addr()} as '{'up' if ok else 'down'}'")
        server.up_status = ok
        return
    new_state = server.up_status
    if ok:
        server.check_failures = 0
        if not server.up_status:
            server.check_successes += 1
            if server.check_successes >= int(server.options.get("rise") or 1):
                new_state = True
    else:
        server.check_successes = 0
        if server.up_status:
            server.check_failures += 1
            if server.check_failures >= int(server.options.get("maxCheckFailures") or 1):
                new_state = False
    if new_state != server.up_status:
        log(f"Marking downstream {server.name_with_addr()} as '{'up' if new_state else 'down'}'")
        server.up_status = new_state
        server.check_failures = server.check_successes = 0
        if not new_state:
            server.latency_usec = 0.0


class CheckQuery:
    """One health query and what its answer must echo (name, type, class)."""

    __slots__ = ("packet", "qname", "qtype", "qclass")

    def __init__(self, packet: bytes, qname: bytes, qtype: int, qclass: int) -> None:
        self.packet, self.qname, self.qtype, self.qclass = packet, qname, qtype, qclass

    @property
    def qid(self) -> int:
        return (self.packet[0] << 8) | self.packet[1]


def build_check_query(server: DownstreamState) -> CheckQuery:
    """RD=1 (+CD), QDCOUNT=1, no EDNS, random ID; checkFunction may change all but the ID."""
    opts = server.options
    try:
        qname = text_to_wire(str(opts.get("checkName") or "a.root-servers.net."))
    except WireError:
        qname = text_to_wire("a.root-servers.net.")
    try:
        qtype = qtype_from_text(str(opts.get("checkType") or "A"))
    except WireError:
        qtype = 1
    qclass = int(opts.get("checkClass") or 1)
    header = bytearray(random.getrandbits(16).to_bytes(2, "big")
                       + bytes((0x01, 0x10 if opts.get("setCD") else 0x00))
                       + b"\x00\x01" + b"\x00" * 6)
    func: CheckFunction | None = opts.get("checkFunction")
    if callable(func):
        qname, qtype, qclass = func(qname, qtype, qclass, header)
    packet = bytes(header) + qname + (qtype & 0xFFFF).to_bytes(2, "big") \
        + (qclass & 0xFFFF).to_bytes(2, "big")
    return CheckQuery(packet, qname, qtype & 0xFFFF, qclass & 0xFFFF)


def check_response(server: DownstreamState, q: CheckQuery, resp: bytes) -> Outcome:
    """facts §2.2: size, same ID, QR, not SERVFAIL, mustResolve, same question."""
    nwa = server.name_with_addr()
    if len(resp) < 12:
        return False, (f"Invalid health check response of size {len(resp)} from backend {nwa}, "
                       "expecting at least 12")
    if resp[:2] != q.packet[:2]:
        # dnsdist 1.7.3 prints the expected ID twice
        return False, (f"Invalid health check response id {q.qid} from backend {nwa}, "
                       f"expecting {q.qid}")
    if not resp[2] & 0x80:
        return False, f"Invalid health check response from backend {nwa}, expecting QR to be set"
    rcode = resp[3] & 0x0F
    if rcode == 2:
        return False, f"Backend {nwa} responded to health check with ServFail"
    if server.options.get("mustResolve") and rcode in (3, 5):
        what = "NXDomain" if rcode == 3 else "Refused"
        return False, (f"Backend {nwa} responded to health check with {what} while "
                       "mustResolve is set")
    n = len(q.qname)
    got = resp[12:12 + n + 4]
    if got[:n].lower() != q.qname.lower() or got[n:] != q.packet[-4:]:
        return False, _mismatch(nwa, q, resp)
    return True, ""


def _mismatch(nwa: str, q: CheckQuery, resp: bytes) -> str:
    try:
        name = name_to_text(resp, 12)
        end = name_end(resp, 12)
        rtype = (resp[end] << 8) | resp[end + 1]
        rclass = (resp[end + 2] << 8) | resp[end + 3]
    except (IndexError, WireError):
        name, rtype, rclass = ".", 0, 0
    return (f"Backend {nwa} responded to health check with an invalid qname ({name} vs "
            f"{name_to_text(q.qname, 0)}), qtype ({qtype_to_text(rtype)} vs "
            f"{qtype_to_text(q.qtype)}) or qclass ({rclass} vs {q.qclass})")


async def check_once(loop: Any, server: DownstreamState,
                     log: Callable[[str], None] = print) -> list[Outcome]:
    """Send one health query over UDP or TCP and judge the answer: one or more outcomes."""
    nwa = server.name_with_addr()
    try:
        q = build_check_query(server)
    except Exception as e:  # a broken checkFunction fails the check, as dnsdist's catch does
        return [(False, f"Error checking the health of backend {nwa}: {e}")]
    timeout = float(server.options.get("checkTimeout") or 1000) / 1000.0
    if server.is_doh:
        return await _doh_outcomes(server, q, timeout)
    use_tcp = bool(server.options.get("checkTCP")) or server.tcp_only
    try:
        if use_tcp:
            resp = await asyncio.wait_for(_tcp_exchange(server, q.packet, log), timeout)
        else:
            resp = await asyncio.wait_for(_udp_exchange(loop, server, q.packet), timeout)
    except TimeoutError:
        return [(False, f"Timeout while waiting for the health check response from backend {nwa}")]
    except CheckConnectError as e:     # no route: one failure, nothing was sent
        return [(False, f"Error checking the health of backend {nwa}: {e}")]
    except (OSError, asyncio.IncompleteReadError) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if use_tcp:
            if isinstance(e, ConnectionRefusedError) and getattr(server, "tls", None) is None:
                reason = f"Error while writing message: {reason}"    # dnsdist 1.7.3's words
            return [(False, f"Error checking the health of backend {nwa}: {reason}")]
        addr = server.address_str
        return [(False, f"Error receiving health check response from {addr}: {reason}"),
                (False, f"Invalid health check response received from 0.0.0.0:0, expecting one "
                        f"from {addr}"),
                (False, f"Invalid health check response id {q.qid} from backend {nwa}, "
                        f"expecting {q.qid}")]
    return [check_response(server, q, resp)]


async def _doh_outcomes(server: DownstreamState, q: CheckQuery, timeout: float) -> list[Outcome]:
    """Over DoH (a connection of its own, checkTimeout its read deadline): dnsdist 1.7.3 says
    nothing about a check that got no status 200 or no answer, only about the DNS answer."""
    from pydist.backend.doh import DoHBackendPool, doh_check   # loaded only for DoH servers
    if not isinstance(server.tcp_pool, DoHBackendPool):
        return [(False, "")]
    try:
        resp = await asyncio.wait_for(
            doh_check(server, q.packet, LOCAL_HEADER if server.use_proxy else b""), timeout + 1)
    except TimeoutError:
        resp = None
    if resp is None:
        return [(False, "")]
    return [check_response(server, q, resp)]


class CheckConnectError(Exception):
    """The check's UDP socket could not be connected (no route to the backend)."""


async def _udp_exchange(loop: Any, server: DownstreamState, query: bytes) -> bytes:
    """A fresh connected socket per check; the first datagram back is judged."""
    sock = socket.socket(family_of(server.host), socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        src = server.options.get("source") or ""
        if src and "@" not in src:
            sock.bind((src, 0))
        try:
            sock.connect(server.addr)
        except OSError as e:
            raise CheckConnectError(f"connecting to {server.address_str}: {e.strerror}") from None
        # useProxyProtocol: dnsdist 1.7.3 sends its checks behind a LOCAL header
        await loop.sock_sendall(sock, LOCAL_HEADER + query if server.use_proxy else query)
        return await loop.sock_recv(sock, 512)
    finally:
        sock.close()


async def _tcp_exchange(server: DownstreamState, query: bytes,
                        log: Callable[[str], None] = print) -> bytes:
    if server.tls is not None:
        from pydist.backend.tls import tls_exchange   # loaded only for DoT servers
        return await tls_exchange(server, query, log)
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
    except ConnectionRefusedError:
        raise
    except OSError as e:    # no route: dnsdist's connect() fails before anything is written
        if e.strerror is None:
            raise
        raise CheckConnectError(f"connecting to {server.address_str}: {e.strerror}") from None
    try:
        writer.write((LOCAL_HEADER if server.use_proxy else b"") + len(query).to_bytes(2, "big")
                     + query)
        n = int.from_bytes(await reader.readexactly(2), "big")
        return await reader.readexactly(n)
    finally:
        writer.close()


class HealthChecker:
    """Once a second: every Auto server whose interval has come is checked, all concurrently."""

    def __init__(self, loop: Any, registry: Any) -> None:
        self.loop = loop
        self.registry = registry
        self.running: set[DownstreamState] = set()
        # called after each check's outcome is applied (pydist.workers pushes the states)
        self.after_apply: Callable[[], None] | None = None

    async def initial(self, added: list[DownstreamState] | None = None) -> None:
        """The check before serving, its result applied directly; also for the servers a
        hot reload added (`added`), so they do not wait for the next round as down."""
        servers = [s for s in (self.registry.servers if added is None else added)
                   if s.availability == AUTO]
        results = await asyncio.gather(*(self._check(s) for s in servers))
        for s, outcomes in zip(servers, results, strict=True):
            self._apply(s, outcomes, True)

    def tick(self) -> None:
        for s in list(self.registry.servers):
            if s.availability != AUTO:
                continue
            s.check_counter += 1
            if s.check_counter >= int(s.options.get("checkInterval") or 1):
                s.check_counter = 0
                if s not in self.running:
                    self.running.add(s)
                    self.loop.create_task(self._run(s))

    async def _check(self, s: DownstreamState) -> list[Outcome]:
        if getattr(s, "unusable", None):
            return [(False, "")]
        return await check_once(self.loop, s, self.registry.log)

    def _apply(self, s: DownstreamState, outcomes: list[Outcome], initial: bool) -> None:
        verbose = self.registry.settings.verbose_health_checks
        for ok, why in outcomes:
            if not ok and verbose and why:
                self.registry.log(why)
            update_health(s, ok, initial, self.registry.log)
        if self.after_apply is not None:
            self.after_apply()

    async def _run(self, s: DownstreamState) -> None:
        try:
            outcomes = await self._check(s)
            if s.availability == AUTO:
                self._apply(s, outcomes, False)
        finally:
            self.running.discard(s)
