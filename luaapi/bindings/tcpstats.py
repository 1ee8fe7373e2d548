"""showTCPStats(): the TCP worker, frontend and backend tables of dnsdist 1.7.3 (facts §6.2)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.frontends import _binds

FE_HEAD = (("#", 3), ("Address", 20), ("Connections", 20), ("Max concurrent conn", 20),
           ("Died reading query", 20), ("Died sending response", 25), ("Gave up", 20),
           ("Client timeouts", 20), ("Downstream timeouts", 20), ("Avg queries/conn", 20),
           ("Avg duration", 20), ("TLS new sessions", 20), ("TLS Resumptions", 20),
           ("TLS unknown ticket keys", 25), ("TLS inactive ticket keys", 25), ("TLS 1.0", 15),
           ("TLS 1.1", 15), ("TLS 1.2", 15), ("TLS 1.3", 15), ("TLS other", 15))
FE_KEYS = ("tcpCurrentConnections", "tcpMaxConcurrentConnections", "tcpDiedReadingQuery",
           "tcpDiedSendingResponse", "tcpGaveUp", "tcpClientTimeouts", "tcpDownstreamTimeouts",
           "tcpAvgQueriesPerConnection", "tcpAvgConnectionDuration", "tlsNewSessions",
           "tlsResumptions", "tlsUnknownTicketKey", "tlsInactiveTicketKey", "tls10queries",
           "tls11queries", "tls12queries", "tls13queries", "tlsUnknownqueries")
BE_HEAD = (("#", 3), ("Name", 20), ("Address", 20), ("Connections", 20),
           ("Max concurrent conn", 20), ("Died sending query", 25), ("Died reading response", 25),
           ("Gave up", 20), ("Read timeouts", 20), ("Write timeouts", 20), ("Connect timeouts", 20),
           ("Total connections", 20), ("Reused connections", 20), ("TLS resumptions", 20),
           ("Avg queries/conn", 20), ("Avg duration", 20))
BE_KEYS = ("tcpCurrentConnections", "tcpMaxConcurrentConnections", "tcpDiedSendingQuery",
           "tcpDiedReadingResponse", "tcpGaveUp", "tcpReadTimeouts", "tcpWriteTimeouts",
           "tcpConnectTimeouts", "tcpNewConnections", "tcpReusedConnections", "tlsResumptions",
           "tcpAvgQueriesPerConnection", "tcpAvgConnectionDuration")
AVERAGES = ("tcpAvgQueriesPerConnection", "tcpAvgConnectionDuration")


def _line(cells: list[Any], widths: list[int]) -> str:
    out = []
    for v, w in zip(cells, widths):
        text = "%f" % v if isinstance(v, float) else str(v)
        out.append(f"{text[:w] if w == 20 and not isinstance(v, (int, float)) else text:<{w}}")
    return " ".join(out) + "\n"


def _values(counters: dict, keys: tuple[str, ...]) -> list[Any]:
    return [float(counters.get(k, 0.0)) if k in AVERAGES else int(counters.get(k, 0))
            for k in keys]


def format_tcp_stats(reg: Any) -> str:
    s = reg.settings
    w = [12, 12, 12, 12]
    out = _line(["Workers", "Max Workers", "Queued", "Max Queued"], w)
    out += _line([s.max_tcp_client_threads, s.max_tcp_client_threads, 0,
                  s.max_tcp_queued_connections], w) + "\n"
    out += "Frontends:\n" + _line([h for h, _ in FE_HEAD], [n for _, n in FE_HEAD])
    for i, (cs, _proto) in enumerate(_binds(reg)):
        out += _line([i, cs.address()] + _values(cs.tcp_counters, FE_KEYS),
                     [n for _, n in FE_HEAD])
    out += "\nBackends:\n" + _line([h for h, _ in BE_HEAD], [n for _, n in BE_HEAD])
    for i, srv in enumerate(reg.servers):
        out += _line([i, srv.name, srv.address_str] + _values(srv.tcp, BE_KEYS),
                     [n for _, n in BE_HEAD])
    return out


def register(rt: Any) -> None:
    rt.fn("showTCPStats", lambda *a: rt.show(format_tcp_stats(rt.registry)), no_side_effect=True)

    def show_security_status(*a: Any) -> None:
        snap = dict(rt.registry.stats.snapshot())
        rt.show("%d\n" % int(snap.get("security-status", 0)))
    rt.fn("showSecurityStatus", show_security_status, no_side_effect=True)
