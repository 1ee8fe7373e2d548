"""Health checks: the I/O reports a boolean; one pure function applies rise/maxCheckFailures."""
from __future__ import annotations

import asyncio
import random
import socket
from typing import Any, Callable

from pydist.backend.server import AUTO, DownstreamState
from pydist.backend.tls import tls_exchange
from pydist.dns.netmask import family_of
from pydist.dns.wire import WireError, qtype_from_text, text_to_wire


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


def build_check_query(server: DownstreamState) -> tuple[bytes, bytes]:
    """(query, expected question bytes lowercased): RD=1 (+CD), no EDNS, random ID."""
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
    flags = 0x0100 | (0x0010 if opts.get("setCD") else 0)
    qid = random.getrandbits(16)
    question = qname + qtype.to_bytes(2, "big") + qclass.to_bytes(2, "big")
    return qid.to_bytes(2, "big") + flags.to_bytes(2, "big") + b"\x00\x01" + b"\x00" * 6 + question, question.lower()


def check_response(server: DownstreamState, query: bytes, question: bytes, resp: bytes) -> tuple[bool, str]:
    """facts §2.2: same ID, QR, not SERVFAIL, mustResolve, same question."""
    if len(resp) < 12:
        return False, "response too short"
    if resp[:2] != query[:2]:
        return False, "invalid ID"
    if not resp[2] & 0x80:
        return False, "not a response"
    rcode = resp[3] & 0x0F
    if rcode == 2:
        return False, "SERVFAIL"
    if server.options.get("mustResolve") and rcode in (3, 5):
        return False, f"rcode {rcode}"
    if resp[12:12 + len(question)].lower() != question:
        return False, "question mismatch"
    return True, ""


async def check_once(loop: Any, server: DownstreamState, verbose: bool,
                     log: Callable[[str], None]) -> bool:
    """Send one health query over UDP or TCP and judge the answer."""
    query, question = build_check_query(server)
    timeout = float(server.options.get("checkTimeout") or 1000) / 1000.0
    use_tcp = bool(server.options.get("checkTCP")) or server.tcp_only
    try:
        if use_tcp:
            resp = await asyncio.wait_for(_tcp_exchange(server, query, log), timeout)
        else:
            resp = await asyncio.wait_for(_udp_exchange(loop, server, query), timeout)
    except asyncio.TimeoutError:
        if verbose:
            log(f"Timeout while checking the health of backend {server.name_with_addr()}")
        return False
    except (OSError, asyncio.IncompleteReadError) as e:
        if verbose:
            log(f"Error while checking the health of backend {server.name_with_addr()}: {e}")
        return False
    ok, why = check_response(server, query, question, resp)
    if not ok and verbose:
        log(f"Invalid health check response from backend {server.name_with_addr()}: {why}")
    return ok


async def _udp_exchange(loop: Any, server: DownstreamState, query: bytes) -> bytes:
    sock = socket.socket(family_of(server.host), socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        src = server.options.get("source") or ""
        if src and "@" not in src:
            sock.bind((src, 0))
        sock.connect(server.addr)
        await loop.sock_sendall(sock, query)
        while True:
            data = await loop.sock_recv(sock, 512)
            if data[:2] == query[:2]:
                return data
    finally:
        sock.close()


async def _tcp_exchange(server: DownstreamState, query: bytes,
                        log: Callable[[str], None] = print) -> bytes:
    if server.tls is not None:
        return await tls_exchange(server, query, log)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(len(query).to_bytes(2, "big") + query)
        n = int.from_bytes(await reader.readexactly(2), "big")
        return await reader.readexactly(n)
    finally:
        writer.close()


class HealthChecker:
    """Once a second: every Auto server whose interval has come is checked, all concurrently."""

    def __init__(self, loop: Any, registry: Any) -> None:
        self.loop = loop
        self.registry = registry

    async def initial(self) -> None:
        servers = [s for s in self.registry.servers if s.availability == AUTO]
        results = await asyncio.gather(*(self._check(s) for s in servers))
        for s, ok in zip(servers, results):
            update_health(s, ok, True, self.registry.log)

    def tick(self) -> None:
        for s in list(self.registry.servers):
            if s.availability != AUTO:
                continue
            s.check_counter += 1
            if s.check_counter >= int(s.options.get("checkInterval") or 1):
                s.check_counter = 0
                self.loop.create_task(self._run(s))

    async def _check(self, s: DownstreamState) -> bool:
        if getattr(s, "unusable", None):
            return False
        return await check_once(self.loop, s, self.registry.settings.verbose_health_checks,
                                self.registry.log)

    async def _run(self, s: DownstreamState) -> None:
        ok = await self._check(s)
        if s.availability == AUTO:
            update_health(s, ok, False, self.registry.log)
