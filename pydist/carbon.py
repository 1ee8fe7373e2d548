"""Carbon (Graphite plaintext) export, as dnsdist 1.7.3's carbonServer() sends it.

Every interval of the first configured server (dnsdist's own simplification), and once at
startup, each server gets a fresh TCP connection and one batch of lines
`<namespace>.<host>.<instance>.<name> <value> <unixtime>\\r\\n`: the global entries in their
internal order, then per backend, per listening socket and per pool. Names, their order and
dnsdist's misspellings (tcpdiedreaddingresponse, tcpreadimeouts, tcpclientimeouts) were read
off real dnsdist's output.
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from pydist.tls.names import HANDSHAKE_ERRORS
from pydist.web.numfmt import cpp_number

CONNECT_TIMEOUT = 2.0

SERVER_KEYS = (("queries", "queries"), ("responses", "responses"), ("drops", "drops"),
               ("latency", "latency"), ("senderrors", "senderrors"),
               ("outstanding", "outstanding"), ("tcpdiedsendingquery", "tcpDiedSendingQuery"),
               ("tcpdiedreaddingresponse", "tcpDiedReadingResponse"), ("tcpgaveup", "tcpGaveUp"),
               ("tcpreadimeouts", "tcpReadTimeouts"), ("tcpwritetimeouts", "tcpWriteTimeouts"),
               ("tcpconnecttimeouts", "tcpConnectTimeouts"),
               ("tcpcurrentconnections", "tcpCurrentConnections"),
               ("tcpmaxconcurrentconnections", "tcpMaxConcurrentConnections"),
               ("tcpnewconnections", "tcpNewConnections"),
               ("tcpreusedconnections", "tcpReusedConnections"),
               ("tlsresumptions", "tlsresumptions"),
               ("tcpavgqueriesperconnection", "tcpAvgQueriesPerConnection"),
               ("tcpavgconnectionduration", "tcpAvgConnectionDuration"))
FRONTEND_KEYS = (("tcpdiedreadingquery", "tcpDiedReadingQuery"),
                 ("tcpdiedsendingresponse", "tcpDiedSendingResponse"),
                 ("tcpgaveup", "tcpGaveUp"), ("tcpclientimeouts", "tcpClientTimeouts"),
                 ("tcpdownstreamtimeouts", "tcpDownstreamTimeouts"),
                 ("tcpcurrentconnections", "tcpCurrentConnections"),
                 ("tcpmaxconcurrentconnections", "tcpMaxConcurrentConnections"),
                 ("tcpavgqueriesperconnection", "tcpAvgQueriesPerConnection"),
                 ("tcpavgconnectionduration", "tcpAvgConnectionDuration"),
                 ("tls10-queries", "tls10Queries"), ("tls11-queries", "tls11Queries"),
                 ("tls12-queries", "tls12Queries"), ("tls13-queries", "tls13Queries"),
                 ("tls-unknown-queries", "tlsUnknownQueries"),
                 ("tlsnewsessions", "tlsNewSessions"), ("tlsresumptions", "tlsResumptions"),
                 ("tlsunknownticketkeys", "tlsUnknownTicketKey"),
                 ("tlsinactiveticketkeys", "tlsInactiveTicketKey"))
CACHE_KEYS = (("cache-size", "maxEntries"), ("cache-entries", "entries"),
              ("cache-hits", "hits"), ("cache-misses", "misses"),
              ("cache-deferred-inserts", "deferredInserts"),
              ("cache-deferred-lookups", "deferredLookups"),
              ("cache-lookup-collisions", "lookupCollisions"),
              ("cache-insert-collisions", "insertCollisions"),
              ("cache-ttl-too-shorts", "ttlTooShorts"))


@dataclass
class CarbonServer:
    """One carbonServer() call."""
    host: str
    port: int
    name: str               # our name in the metric path ('' = this machine's, dots as '_')
    interval: int = 30
    namespace: str = "dnsdist"
    instance: str = "main"

    def prefix(self) -> str:
        name = self.name or socket.gethostname().replace(".", "_")
        return f"{self.namespace}.{name}.{self.instance}."


def carbon_lines(reg: Any, conf: CarbonServer, now: int) -> bytes:
    """One batch for one server: every line dnsdist 1.7.3 sends, in its order."""
    base, out = conf.prefix(), []
    tail = f" {now}\r\n"
    for name, value in reg.stats.snapshot():
        out.append(f"{base}{name} {cpp_number(value)}{tail}")
    for s in reg.servers:
        values = _server_values(s)
        sbase = f"{base}servers.{(s.name or s.address_str).replace('.', '_')}."
        out += [f"{sbase}{name} {cpp_number(values[key])}{tail}" for name, key in SERVER_KEYS]
    seen: dict[str, int] = {}
    for fe in reg.frontends:
        if fe.udp:
            out += _frontend_lines(base, fe.udp_state, "_udp", seen, tail)
        if fe.tcp:
            out += _frontend_lines(base, fe.tcp_state, "_tcp", seen, tail)
    for name in sorted(reg.pools):
        out += _pool_lines(base, reg.pools[name], tail)
    return "".join(out).encode()


def _server_values(s: Any) -> dict[str, float]:
    tcp = s.tcp
    values: dict[str, float] = {key: tcp.get(key, 0) for _, key in SERVER_KEYS}
    values.update(queries=s.queries, responses=s.responses, drops=s.reuseds,
                  latency=s.latency_usec / 1000.0 if s.is_up() else 0,
                  senderrors=s.send_errors, outstanding=s.outstanding,
                  tlsresumptions=s.tls_resumptions)
    return values


def _frontend_lines(base: str, cs: Any, suffix: str, seen: dict[str, int],
                    tail: str) -> list[str]:
    name = (cs.decl.address() + suffix).replace(".", "_")
    if name in seen:            # the same address twice: dnsdist numbers the repeats
        seen[name] += 1
        name = f"{name}_{seen[name] - 1}"
    else:
        seen[name] = 1
    fbase = f"{base}frontends.{name}."
    c = cs.tcp_counters
    lines = [f"{fbase}queries {cs.queries}{tail}", f"{fbase}responses {cs.responses}{tail}"]
    lines += [f"{fbase}{n} {cpp_number(c.get(key, 0))}{tail}" for n, key in FRONTEND_KEYS]
    tls = cs.decl.tls if cs.proto == "TCP" else None
    if tls is not None:
        lines += [f"{fbase}tls{e[0].lower()} {tls.errors[e[0]]}{tail}" for e in HANDSHAKE_ERRORS]
    return lines


def _pool_lines(base: str, pool: Any, tail: str) -> list[str]:
    pbase = f"{base}pools.{(pool.name or '_default_').replace('.', '_')}."
    lines = [f"{pbase}servers {len(pool.servers)}{tail}",
             f"{pbase}servers-up {sum(1 for s in pool.servers if s.is_up())}{tail}"]
    if pool.cache is not None:
        stats = pool.cache.get_stats()
        lines += [f"{pbase}{n} {stats.get(key, 0)}{tail}" for n, key in CACHE_KEYS]
    return lines


async def send_batch(reg: Any, conf: CarbonServer) -> None:
    """One connection, one batch; a failure is logged in dnsdist's words, never raised."""
    writer = None
    try:
        batch = carbon_lines(reg, conf, int(time.time()))
    except Exception as e:  # noqa: BLE001 -- a bug here must not end the export loop
        reg.log(f"Problem sending carbon data: {e!r}")
        return
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(conf.host, conf.port),
                                           CONNECT_TIMEOUT)
        writer.write(batch)
        await asyncio.wait_for(writer.drain(), CONNECT_TIMEOUT)
    except (TimeoutError, OSError) as e:
        code = getattr(e, "errno", None) or errno.ETIMEDOUT
        reg.log(f"Problem sending carbon data: failed in writen2: {os.strerror(code)}")
    finally:
        if writer is not None:
            writer.close()


async def carbon_loop(reg: Any) -> None:
    """At startup, then every interval of the first server (dnsdist's loop)."""
    while True:
        for conf in list(reg.carbon_servers):
            await send_batch(reg, conf)
        await asyncio.sleep(max(1, reg.carbon_servers[0].interval))
