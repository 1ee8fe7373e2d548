"""/healthz and /readyz: pydist's own probes (dnsdist 1.7.3 has neither), for Kubernetes
liveness and readiness checks. Liveness says the process serves HTTP; readiness says DNS can
be answered: every declared listener holds its bound sockets and at least one pool has a
server up. Plain-text bodies, so `curl` and probe logs say why."""
from __future__ import annotations

from typing import Any

HEALTH_PATHS = ("/healthz", "/readyz")


def _unbound(reg: Any) -> list[str]:
    """Listeners whose declared UDP or TCP socket is not bound."""
    return [fe.address() for fe in reg.frontends
            if (fe.udp and fe.sock_udp is None) or (fe.tcp and fe.sock_tcp is None)]


def _pools_up(reg: Any) -> list[str]:
    return [name for name, pool in reg.pools.items() if any(s.is_up() for s in pool.servers)]


def readiness(reg: Any) -> tuple[int, str]:
    """(200, why) when ready, (503, why not) otherwise."""
    problems = []
    if not reg.frontends:
        problems.append("no listener declared")
    unbound = _unbound(reg)
    if unbound:
        problems.append("listeners not bound: " + ", ".join(unbound))
    if not _pools_up(reg):
        problems.append("no pool has a server up")
    if problems:
        return 503, "not ready: " + "; ".join(problems) + "\n"
    pools = ", ".join(f'"{name}"' for name in _pools_up(reg))
    return 200, f"ready: {len(reg.frontends)} listener(s) bound, servers up in pool(s) {pools}\n"


def answer(reg: Any, path: str) -> tuple[int, str]:
    if path == "/healthz":
        return 200, "ok\n"
    return readiness(reg)
