"""Read-only views of the Registry shared by /metrics and the JSON API: servers, frontends,
pools and rules with dnsdist's key names (facts §7), computed when someone asks."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydist.backend.server import DOWN, TCP_COUNTERS
from pydist.tls.names import HANDSHAKE_ERRORS
from pydist.web.numfmt import json_number

FRONTEND_TCP_KEYS = ("tcpDiedReadingQuery", "tcpDiedSendingResponse", "tcpGaveUp",
                     "tcpClientTimeouts", "tcpDownstreamTimeouts", "tcpCurrentConnections",
                     "tcpMaxConcurrentConnections", "tcpAvgQueriesPerConnection",
                     "tcpAvgConnectionDuration")
FRONTEND_TLS_KEYS = ("tls10Queries", "tls11Queries", "tls12Queries", "tls13Queries",
                     "tlsUnknownQueries", "tlsNewSessions", "tlsResumptions",
                     "tlsUnknownTicketKey", "tlsInactiveTicketKey")
CACHE_KEYS = (("cacheSize", "maxEntries"), ("cacheEntries", "entries"), ("cacheHits", "hits"),
              ("cacheMisses", "misses"), ("cacheDeferredInserts", "deferredInserts"),
              ("cacheDeferredLookups", "deferredLookups"),
              ("cacheLookupCollisions", "lookupCollisions"),
              ("cacheInsertCollisions", "insertCollisions"), ("cacheTTLTooShorts", "ttlTooShorts"))
RESPONSE_CHAINS = (("response-rules", "response"), ("cache-hit-response-rules", "cachehit"),
                   ("self-answered-response-rules", "selfanswered"))


def server_pools(s: Any) -> list[str]:
    """As 1.7.3 lists them: a server never given `pool=` shows no pool (not even "")."""
    pools = set(s.pools)
    if s.options.get("pool") is None:
        pools.discard("")
    return sorted(pools)


def server_latency_ms(s: Any) -> float | None:
    return None if s.availability == DOWN else json_number(s.latency_usec / 1000.0)


def server_json(s: Any, index: int) -> dict[str, Any]:
    """One entry of "servers" in /api/v1/servers/localhost."""
    d: dict[str, Any] = {
        "id": index, "name": s.name, "address": s.address_str, "state": s.status_text(),
        "qps": json_number(round(s.query_load, 6)), "qpsLimit": s.qps.get_rate(),
        "outstanding": s.outstanding, "reuseds": s.reuseds, "weight": s.weight,
        "order": s.order, "pools": server_pools(s), "latency": server_latency_ms(s),
        "queries": s.queries, "responses": s.responses, "sendErrors": s.send_errors,
        "tlsResumptions": s.tls_resumptions, "dropRate": json_number(s.drop_rate),
        "tcpAvgQueriesPerConnection": json_number(s.tcp.get("tcpAvgQueriesPerConnection", 0)),
        "tcpAvgConnectionDuration": json_number(s.tcp.get("tcpAvgConnectionDuration", 0)),
    }
    for key in TCP_COUNTERS:
        d[key] = s.tcp.get(key, 0)
    return d


def client_states(reg: Any) -> Iterator[Any]:
    """Every served socket in dnsdist's order: per listener, UDP then TCP."""
    for fe in reg.frontends:
        if fe.udp:
            yield fe.udp_state
        if fe.tcp:
            yield fe.tcp_state


def proto_label(cs: Any) -> str:
    """"TCP (DNS over TLS)" for a DoT listener, "TCP (DNS over HTTPS)" (or HTTP, without
    certificates) for a DoH one: dnsdist's API type and metrics label."""
    if cs.decl.kind == "doh":
        return cs.proto + (" (DNS over HTTPS)" if cs.decl.tls is not None else " (DNS over HTTP)")
    if cs.decl.kind == "dnscrypt":
        return cs.proto + " (DNSCrypt)"
    return cs.proto + (" (DNS over TLS)" if cs.decl.tls is not None else "")


def frontend_json(cs: Any, index: int) -> dict[str, Any]:
    d: dict[str, Any] = {"id": index, "address": cs.address(), "udp": cs.proto == "UDP",
                         "tcp": cs.proto == "TCP", "type": proto_label(cs),
                         "queries": cs.queries, "responses": cs.responses}
    for key in FRONTEND_TCP_KEYS + FRONTEND_TLS_KEYS:
        d[key] = json_number(cs.tcp_counters.get(key, 0))
    if cs.decl.tls is not None:
        for label, _, _, suffix in HANDSHAKE_ERRORS:
            d["tlsHandshakeFailures" + suffix] = cs.decl.tls.errors[label]
    return d


def sorted_pools(reg: Any) -> list[Any]:
    return [reg.pools[name] for name in sorted(reg.pools)]


def pool_stats(pool: Any) -> dict[str, Any]:
    """The pool object of the API ("stats" of /pool?name=): servers and cache figures."""
    d: dict[str, Any] = {"name": pool.name, "serversCount": len(pool.servers)}
    stats = pool.cache.get_stats() if pool.cache is not None else {}
    for key, src in CACHE_KEYS:
        d[key] = stats.get(src, 0)
    return d


def rule_json(rule: Any, index: int, query_chain: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"id": index, "creationOrder": rule.order, "uuid": rule.uuid,
                         "matches": rule.matches, "rule": str(rule.selector),
                         "action": str(rule.action)}
    if query_chain:
        # 1.7.3's built-in actions all report this one empty-named counter
        d["action-stats"] = dict(getattr(rule.action, "stats", None) or {"": 0})
    else:
        d["name"] = rule.name
    return d


def all_rules(reg: Any) -> Iterator[Any]:
    for kind in ("query", "response", "cachehit", "selfanswered"):
        yield from reg.rules[kind].rules
