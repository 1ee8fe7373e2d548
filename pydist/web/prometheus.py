"""/metrics: dnsdist 1.7.3's Prometheus text, line for line (facts §5 and §7): the global
entries, the latency histogram, then servers, frontends, pools, rules and dnsdist_info."""
from __future__ import annotations

from typing import Any

from pydist.stats import GAUGES
from pydist.tls.names import HANDSHAKE_ERRORS
from pydist.web import prometheus_help as H
from pydist.web import views
from pydist.web.numfmt import cpp_number

NOT_EXPORTED = frozenset({"special-memory-usage", "latency-sum", "latency-count"})
_BUCKETS = (("1", "latency0-1"), ("10", "latency1-10"), ("50", "latency10-50"),
            ("100", "latency50-100"), ("1000", "latency100-1000"), ("+Inf", "latency-slow"))


def _head(out: list[str], name: str, kind: str, help_text: str, type_name: str = "") -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {type_name or name} {kind}")


def _globals(out: list[str], entries: list[tuple[str, float]],
             extra_help: dict[str, str]) -> dict[str, float]:
    values = dict(entries)
    for name, value in entries:
        help_text = H.ENTRY_HELP.get(name) or extra_help.get(name)
        if name in NOT_EXPORTED or help_text is None:
            continue
        metric = "dnsdist_" + name.replace("-", "_")
        _head(out, metric, "gauge" if name in GAUGES else "counter", help_text)
        out.append(f"{metric} {cpp_number(value)}")
    return values


def _histogram(out: list[str], values: dict[str, float]) -> None:
    _head(out, "dnsdist_latency", "histogram", H.LATENCY_HELP)
    total = 0
    for le, entry in _BUCKETS:
        total += int(values.get(entry, 0))
        out.append(f'dnsdist_latency_bucket{{le="{le}"}} {total}')
    out.append(f"dnsdist_latency_sum {cpp_number(values.get('latency-sum', 0))}")
    out.append(f"dnsdist_latency_count {cpp_number(values.get('latency-count', 0))}")


def _server_values(s: Any) -> dict[str, float]:
    tcp = s.tcp
    return {
        "status": 1 if s.is_up() else 0, "queries": s.queries, "responses": s.responses,
        "drops": s.reuseds, "latency": s.latency_usec / 1000.0, "senderrors": s.send_errors,
        "outstanding": s.outstanding, "order": s.order, "weight": s.weight,
        "tcpdiedsendingquery": tcp.get("tcpDiedSendingQuery", 0),
        "tcpdiedreadingresponse": tcp.get("tcpDiedReadingResponse", 0),
        "tcpgaveup": tcp.get("tcpGaveUp", 0), "tcpreadtimeouts": tcp.get("tcpReadTimeouts", 0),
        "tcpwritetimeouts": tcp.get("tcpWriteTimeouts", 0),
        "tcpconnecttimeouts": tcp.get("tcpConnectTimeouts", 0),
        "tcpcurrentconnections": tcp.get("tcpCurrentConnections", 0),
        "tcpmaxconcurrentconnections": tcp.get("tcpMaxConcurrentConnections", 0),
        "tcpnewconnections": tcp.get("tcpNewConnections", 0),
        "tcpreusedconnections": tcp.get("tcpReusedConnections", 0),
        "tcpavgqueriesperconn": tcp.get("tcpAvgQueriesPerConnection", 0),
        "tcpavgconnduration": tcp.get("tcpAvgConnectionDuration", 0),
        "tlsresumptions": s.tls_resumptions,
    }


def _servers(out: list[str], reg: Any) -> None:
    for suffix, kind, help_text in H.SERVER_METRICS:
        # 1.7.3 misspells the TYPE line of this one; Grafana dashboards never notice
        type_name = "dnsdist_server_tlsersumptions" if suffix == "tlsresumptions" else ""
        _head(out, f"dnsdist_server_{suffix}", kind, help_text, type_name)
    for s in reg.servers:
        label = f'{{server="{_escape(s.name.replace(".", "_"))}",address="{s.address_str}"}}'
        values = _server_values(s)
        for suffix in H.SERVER_SAMPLE_ORDER:
            if suffix == "latency" and not s.is_up():
                continue
            out.append(f"dnsdist_server_{suffix}{label} {cpp_number(values[suffix])}")


def _frontends(out: list[str], reg: Any) -> None:
    for suffix, kind, help_text in H.FRONTEND_METRICS:
        _head(out, f"dnsdist_frontend_{suffix}", kind, help_text)
    for cs in views.client_states(reg):
        label = f'{{frontend="{cs.address()}",proto="{views.proto_label(cs)}",thread="0"}}'
        out.append(f"dnsdist_frontend_queries{label} {cs.queries}")
        out.append(f"dnsdist_frontend_responses{label} {cs.responses}")
        if cs.proto == "TCP":
            c = cs.tcp_counters
            for suffix, key in zip(H.FRONTEND_TCP_SAMPLES, views.FRONTEND_TCP_KEYS, strict=True):
                out.append(f"dnsdist_frontend_{suffix}{label} {cpp_number(c.get(key, 0))}")
            if cs.decl.tls is not None:
                _tls_samples(out, label, cs.decl.tls)
    for suffix, kind, help_text in H.DOH_FRONTEND_METRICS:
        _head(out, f"dnsdist_frontend_{suffix}", kind, help_text)
    for decl in reg.frontends:
        if decl.doh is not None:
            _doh_samples(out, decl)


def _doh_samples(out: list[str], decl: Any) -> None:
    """One DoH listener's dnsdist_frontend_doh_* samples, in dnsdist 1.7.3's order."""
    c = decl.doh.counters
    base = f'frontend="{decl.address()}",thread="0"'
    f = "dnsdist_frontend_"
    out.append(f"{f}http_connects{{{base}}} {c.http_connects}")
    out.append(f'{f}doh_http_method_queries{{method="get",{base}}} {c.get_queries}')
    out.append(f'{f}doh_http_method_queries{{method="post",{base}}} {c.post_queries}')
    for v in (1, 2):
        out.append(f'{f}doh_http_version_queries{{version="{v}",{base}}} {c.version_queries[v]}')
    out.append(f"{f}doh_bad_requests{{{base}}} {c.bad_requests}")
    for kind, n in (("error", c.error_responses), ("redirect", c.redirect_responses),
                    ("valid", c.valid_responses)):
        out.append(f'{f}doh_responses{{type="{kind}",{base}}} {n}')
    for v in (1, 2):
        for status, n in c.status[v].items():
            out.append(f'{f}doh_version_status_responses{{httpversion="{v}",status="{status}",'
                       f"{base}}} {n}")


def _tls_samples(out: list[str], label: str, tls: Any) -> None:
    """A DoT listener's extra samples, in dnsdist 1.7.3's order and labels."""
    c, base = tls.counters, label[:-1]
    for suffix, key in (("tlsnewsessions", "tlsNewSessions"), ("tlsresumptions", "tlsResumptions"),
                        ("tlsunknownticketkeys", "tlsUnknownTicketKey"),
                        ("tlsinactiveticketkeys", "tlsInactiveTicketKey")):
        out.append(f"dnsdist_frontend_{suffix}{label} {c.get(key, 0)}")
    for version, key in (("tls10", "tls10Queries"), ("tls11", "tls11Queries"),
                         ("tls12", "tls12Queries"), ("tls13", "tls13Queries"),
                         ("unknown", "tlsUnknownQueries")):
        out.append(f'dnsdist_frontend_tlsqueries{base},tls="{version}"}} {c.get(key, 0)}')
    for error in HANDSHAKE_ERRORS:
        out.append(f'dnsdist_frontend_tlshandshakefailures{base},error="{error[0]}"}} '
                   f"{tls.errors[error[0]]}")


def _pools(out: list[str], reg: Any) -> None:
    for suffix, kind, help_text in H.POOL_METRICS:
        _head(out, f"dnsdist_pool_{suffix}", kind, help_text)
    for pool in views.sorted_pools(reg):
        label = f'{{pool="{_escape(pool.name) or "_default_"}"}}'
        out.append(f"dnsdist_pool_servers{label} {len(pool.servers)}")
        out.append(f"dnsdist_pool_active_servers{label} "
                   f"{sum(1 for s in pool.servers if s.is_up())}")
        if pool.cache is not None:
            stats = views.pool_stats(pool)
            for (suffix, _, _), (key, _) in zip(H.POOL_METRICS[2:], views.CACHE_KEYS, strict=True):
                out.append(f"dnsdist_pool_{suffix}{label} {stats[key]}")


def _rules(out: list[str], reg: Any) -> None:
    _head(out, "dnsdist_rule_hits", "counter", H.RULE_HITS_HELP)
    for rule in views.all_rules(reg):
        out.append(f'dnsdist_rule_hits{{id="{_escape(rule.name or rule.uuid)}"}} {rule.matches}')


def _escape(text: str) -> str:
    """Label values stay parseable whatever a config names its servers or rules."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _top_offenders(out: list[str], top: Any) -> None:
    _head(out, "dnsdist_dynblocks_nmg_top_offenders_hits_per_second", "gauge",
          H.DYNBLOCKS_NMG_TOP_OFFENDERS_HITS_PER_SECOND_HELP)
    for reason, what, rate in top.netmasks if top is not None else ():
        out.append(f'dnsdist_dynblocks_nmg_top_offenders_hits_per_second{{reason="'
                   f'{_escape(reason)}",netmask="{what}"}} {cpp_number(rate)}')
    _head(out, "dnsdist_dynblocks_smt_top_offenders_hits_per_second", "gauge",
          H.DYNBLOCKS_SMT_TOP_OFFENDERS_HITS_PER_SECOND_HELP)
    for reason, what, rate in top.suffixes if top is not None else ():
        out.append(f'dnsdist_dynblocks_smt_top_offenders_hits_per_second{{reason="'
                   f'{_escape(reason)}",suffix="{_escape(what)}"}} {cpp_number(rate)}')


def render(reg: Any, top: Any = None) -> str:
    """The whole /metrics body; `top` is the TopOffenders ranking when the server keeps one."""
    out: list[str] = []
    values = _globals(out, reg.stats.snapshot(include_special=False), reg.stats.extra_help)
    _histogram(out, values)
    _servers(out, reg)
    _frontends(out, reg)
    _pools(out, reg)
    _rules(out, reg)
    _top_offenders(out, top)
    _head(out, "dnsdist_info", "gauge", H.INFO_HELP)
    out.append('dnsdist_info{version="1.7.3"} 1')
    return "\n".join(out) + "\n"
