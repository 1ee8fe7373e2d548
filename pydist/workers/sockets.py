"""Which listening sockets each worker serves.

A listener in a group of `reusePort` listeners on one address as large as N (dnsdist's way
of asking for N threads) is served by one worker each: worker i serves the group's i-th
listener, as dnsdist's i-th thread does. Every other listener gets one SO_REUSEPORT socket
per worker, bound here in the supervisor before privileges are dropped. The supervisor keeps
every socket open, so a restarted worker takes over the same socket (datagrams and
connections that arrived meanwhile wait in its buffers) and the kernel never rehashes the
other workers' clients.
"""
from __future__ import annotations

import copy
import socket
from collections import defaultdict
from typing import Callable

from pydist.registry import FrontendDecl, Registry
from pydist.workers import reuse_port_groups

# per worker: for each frontend (registry order), its (UDP, TCP) sockets or Nones
Pair = tuple[socket.socket | None, socket.socket | None]
Assignment = list[Pair]


def plan_sockets(reg: Registry, n: int, bind: Callable[[FrontendDecl], None],
                 carried: dict[int, list[Pair]] | None = None) -> list[Assignment]:
    """Bind what is missing and say which sockets worker i serves; `bind` binds one clone
    with SO_REUSEPORT (pydist.engine.bind_frontend). `carried` (id(frontend) -> each worker's
    pair): a listener a reload kept keeps every worker's sockets. Raises what `bind` raises."""
    groups = {k for k, size in reuse_port_groups(reg).items() if size == n}
    seen: dict[tuple[str, str, int], int] = defaultdict(int)
    plan: list[Assignment] = [[] for _ in range(n)]
    for fe in reg.frontends:
        key = (fe.kind, fe.host, fe.port)
        if carried and id(fe) in carried:
            if fe.options.get("reusePort") and key in groups:
                seen[key] += 1
            for i in range(n):
                plan[i].append(carried[id(fe)][i])
            continue
        if fe.options.get("reusePort") and key in groups:
            owner = seen[key]
            seen[key] += 1
            for i in range(n):
                plan[i].append((fe.sock_udp, fe.sock_tcp) if i == owner else (None, None))
            continue
        plan[0].append((fe.sock_udp, fe.sock_tcp))
        for i in range(1, n):
            clone = copy.copy(fe)
            clone.sock_udp = clone.sock_tcp = None
            bind(clone)
            plan[i].append((clone.sock_udp, clone.sock_tcp))
    return plan


def columns(frontends: list[FrontendDecl], plan: list[Assignment]) -> dict[int, list[Pair]]:
    """id(frontend) -> each worker's sockets for it (what plan_sockets' `carried` takes)."""
    return {id(fe): [a[k] for a in plan] for k, fe in enumerate(frontends)}


def all_sockets(plan: list[Assignment]) -> list[socket.socket]:
    return [s for a in plan for pair in a for s in pair if s is not None]


def all_fds(plan: list[Assignment]) -> set[int]:
    return {s.fileno() for a in plan for pair in a for s in pair if s is not None}
