"""showTCPStats(): TCP and DoT figures per frontend socket and per backend, dnsdist 1.7.3's table
(the TLS session and version columns are where DoT listeners and backends show their counters)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.frontends import _binds
from pydist.tls.names import FRONTEND_TLS_COUNTERS

_FE_HEAD = (("Connections", 20), ("Max concurrent conn", 20), ("Died reading query", 20),
            ("Died sending response", 25), ("Gave up", 20), ("Client timeouts", 20),
            ("Downstream timeouts", 20), ("Avg queries/conn", 20), ("Avg duration", 20),
            ("TLS new sessions", 20), ("TLS Resumptions", 20), ("TLS unknown ticket keys", 25),
            ("TLS inactive ticket keys", 25), ("TLS 1.0", 15), ("TLS 1.1", 15), ("TLS 1.2", 15),
            ("TLS 1.3", 15), ("TLS other", 15))
_FE_TCP = ("tcpCurrentConnections", "tcpMaxConcurrentConnections", "tcpDiedReadingQuery",
           "tcpDiedSendingResponse", "tcpGaveUp", "tcpClientTimeouts", "tcpDownstreamTimeouts")
_BE_HEAD = (("Connections", 20), ("Max concurrent conn", 20), ("Died sending query", 25),
            ("Died reading response", 25), ("Gave up", 20), ("Read timeouts", 20),
            ("Write timeouts", 20), ("Connect timeouts", 20), ("Total connections", 20),
            ("Reused connections", 20), ("TLS resumptions", 20), ("Avg queries/conn", 20),
            ("Avg duration", 20))
_BE_TCP = ("tcpCurrentConnections", "tcpMaxConcurrentConnections", "tcpDiedSendingQuery",
           "tcpDiedReadingResponse", "tcpGaveUp", "tcpReadTimeouts", "tcpWriteTimeouts",
           "tcpConnectTimeouts", "tcpNewConnections", "tcpReusedConnections")


def _row(cells: list[tuple[Any, int]]) -> str:
    """Each cell left-justified to its width and followed by a space, but the last."""
    return " ".join(f"{v!s:<{w}}" for v, w in cells)


def tcp_stats(reg: Any) -> str:
    st = reg.settings
    lines = [_row([("Workers", 12), ("Max Workers", 12), ("Queued", 12), ("Max Queued", 12)]),
             _row([(st.max_tcp_client_threads, 12), (st.max_tcp_client_threads, 12), (0, 12),
                   (st.max_tcp_queued_connections, 12)]),
             "", "Frontends:",
             _row([("#", 3), ("Address", 20)] + list(_FE_HEAD))]
    for i, (cs, _proto) in enumerate(_binds(reg)):
        tcp = cs.tcp_counters
        tls = cs.decl.tls.counters if cs.decl.tls is not None and cs.proto == "TCP" else {}
        values: list[Any] = [tcp.get(k, 0) for k in _FE_TCP]
        values += [f"{tcp.get(k, 0):f}" for k in ("tcpAvgQueriesPerConnection",
                                                   "tcpAvgConnectionDuration")]
        values += [tls.get(k, 0) for k in FRONTEND_TLS_COUNTERS]
        lines.append(_row([(i, 3), (cs.address()[:20], 20)]
                          + [(v, w) for v, (_, w) in zip(values, _FE_HEAD, strict=True)]))
    lines += ["", "Backends:", _row([("#", 3), ("Name", 20), ("Address", 20)] + list(_BE_HEAD))]
    for i, s in enumerate(reg.servers):
        values = [s.tcp.get(k, 0) for k in _BE_TCP] + [s.tls_resumptions]
        values += [f"{s.tcp.get(k, 0):f}" for k in ("tcpAvgQueriesPerConnection",
                                                     "tcpAvgConnectionDuration")]
        lines.append(_row([(i, 3), (s.name[:20], 20), (s.address_str[:20], 20)]
                          + [(v, w) for v, (_, w) in zip(values, _BE_HEAD, strict=True)]))
    return "\n".join(lines) + "\n"


def register(rt: Any) -> None:
    rt.fn("showTCPStats", lambda *a: rt.show(tcp_stats(rt.registry)), no_side_effect=True)

    def show_security_status(*a: Any) -> None:
        snap = dict(rt.registry.stats.snapshot())
        rt.show(f"{int(snap.get('security-status', 0))}\n")
    rt.fn("showSecurityStatus", show_security_status, no_side_effect=True)
