"""Worker processes (issue 18 item 2): the config is evaluated once, then N forked workers
serve the listeners with SO_REUSEPORT, each with its own loop, while the supervisor keeps what
must be single (console, web server, carbon, health checks, dynamic-block maintenance).

- supervisor.py: forks, watches and restarts the workers; forwards console and API changes;
  pushes health states and dynamic blocks; gathers the workers' counters before any output.
- worker.py: the child side (its own loop, no checks, no console), answering control messages.
- control.py: the channel between them (length-prefixed messages, a handler registry).
- sockets.py: which listening sockets each worker serves.
- stats_sum.py: what a worker reports and how the supervisor sums it into its own objects.

N comes from, in this order: the command line's `--workers N`, `pydist.setWorkers(N)`, and the
dnsdist form (several `addLocal` of one address with `reusePort=true`: dnsdist gives each
its own thread, pydist its own worker). N = 1 (the default) starts no supervisor at all.
"""
from __future__ import annotations

import os
from collections import Counter

from pydist.registry import Registry

MAX_WORKERS = 64


def reuse_port_groups(reg: Registry) -> dict[tuple[str, str, int], int]:
    """How many listeners share each (kind, host, port) with reusePort=true."""
    return Counter((fe.kind, fe.host, fe.port) for fe in reg.frontends
                   if fe.options.get("reusePort"))


def worker_count(reg: Registry, cli_workers: int | None) -> int:
    """N: the command line's --workers, else pydist.setWorkers(N), else the largest group of
    reusePort listeners on one address (1 when none is configured)."""
    if cli_workers is not None:
        return cli_workers
    if reg.settings.workers:
        return reg.settings.workers
    return max(reuse_port_groups(reg).values(), default=1)


def open_fds() -> set[int]:
    """The descriptors open now: taken after the config, before any loop exists, they are
    what a forked worker keeps (the config's files and stores); it drops the rest."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}
