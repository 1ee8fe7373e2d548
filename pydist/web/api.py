"""The JSON endpoints: /jsonstat and /api/v1/servers/localhost[...] with dnsdist 1.7.3's keys
(facts §7). Each function returns a JSON-ready value, or None for "no such thing" (404)."""
from __future__ import annotations

import json
import time
from typing import Any

from pydist.web import views
from pydist.web.numfmt import json_number

# /jsonstat?command=stats has these fixed extras beside the §5 entries (kept for old scripts)
JSONSTAT_FIXED = {"packetcache-hits": 0, "packetcache-misses": 0, "over-capacity-drops": 0,
                  "too-old-drops": 0}


def dumps(value: Any) -> str:
    """json11's layout: keys sorted, `{"a": 1, "b": 2}`."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def entries(reg: Any) -> list[tuple[str, Any]]:
    return [(n, json_number(v)) for n, v in reg.stats.snapshot(include_special=False)]


def jsonstat(reg: Any, command: str) -> Any:
    if command == "stats":
        d: dict[str, Any] = dict(entries(reg))
        d.update(JSONSTAT_FIXED)
        d["server-policy"] = reg.policy.name
        return d
    if command == "dynblocklist":
        return dynblock_list(reg)
    if command == "ebpfblocklist":
        return {}
    return None


def dynblock_list(reg: Any) -> dict[str, Any]:
    """Live dynamic blocks, keyed by netmask or suffix (suffix entries have no "warning")."""
    dyn = getattr(reg, "dynblocks", None)
    if dyn is None:
        return {}
    now = time.time()
    out: dict[str, Any] = {}
    for net, b in dyn.nets.items():
        if now < b.until:
            out[str(net)] = {"reason": b.reason, "seconds": int(b.until) - int(now),
                             "blocks": b.blocks, "action": _action_text(dyn, b),
                             "warning": bool(b.warning)}
    for text, b in dyn.names.values():
        if now < b.until:
            out[text] = {"reason": b.reason, "seconds": int(b.until) - int(now), "blocks": b.blocks,
                         "action": _action_text(dyn, b)}
    return out


def _action_text(dyn: Any, block: Any) -> str:
    from pydist.dynblocks import ACTION_TEXT
    return ACTION_TEXT.get(dyn.action_of(block), "Drop")


def localhost(reg: Any) -> dict[str, Any]:
    """/api/v1/servers/localhost: the whole picture in one object."""
    d: dict[str, Any] = {
        "daemon_type": "dnsdist", "version": "1.7.3",
        "servers": [views.server_json(s, i) for i, s in enumerate(reg.servers)],
        "frontends": [views.frontend_json(cs, i)
                      for i, cs in enumerate(views.client_states(reg))],
        "pools": [dict(views.pool_stats(p), id=i) for i, p in enumerate(views.sorted_pools(reg))],
        "rules": [views.rule_json(r, i, True) for i, r in enumerate(reg.rules["query"].rules)],
        "acl": ", ".join(reg.acl.to_strings()),
        "local": ", ".join(dict.fromkeys(fe.address() for fe in reg.frontends)),
        "dohFrontends": [doh_json(fe, i) for i, fe in
                         enumerate(f for f in reg.frontends if f.doh is not None)],
    }
    for key, kind in views.RESPONSE_CHAINS:
        d[key] = [views.rule_json(r, i, False) for i, r in enumerate(reg.rules[kind].rules)]
    return d


def statistics(reg: Any) -> list[dict[str, Any]]:
    return [{"type": "StatisticItem", "name": n, "value": v} for n, v in entries(reg)]


def config(reg: Any) -> list[dict[str, Any]]:
    s = reg.settings
    items = {
        "acl": ", ".join(reg.acl.to_strings()),
        "allow-empty-response": s.allow_empty_response,
        # 1.7.3 reports its built-in default here whatever controlSocket() said
        "control-socket": "127.0.0.1:5199",
        "ecs-override": s.ecs_override, "ecs-source-prefix-v4": s.ecs_source_prefix_v4,
        "ecs-source-prefix-v6": s.ecs_source_prefix_v6, "fixup-case": s.fixup_case,
        "max-outstanding": s.max_udp_outstanding, "server-policy": reg.policy.name,
        "stale-cache-entries-ttl": s.stale_cache_entries_ttl,
        "tcp-recv-timeout": s.tcp_recv_timeout, "tcp-send-timeout": s.tcp_send_timeout,
        "truncate-tc": s.truncate_tc, "verbose": s.verbose,
        "verbose-health-checks": s.verbose_health_checks,
    }
    return [{"type": "ConfigSetting", "name": k, "value": v} for k, v in items.items()]


def allow_from(reg: Any) -> dict[str, Any]:
    return {"type": "ConfigSetting", "name": "allow-from", "value": reg.acl.to_strings()}


def pool(reg: Any, name: str) -> dict[str, Any] | None:
    p = reg.pools.get(name)
    if p is None:
        return None
    return {"stats": views.pool_stats(p),
            "servers": [views.server_json(s, i) for i, s in enumerate(p.servers)]}


def doh_json(decl: Any, index: int) -> dict[str, Any]:
    """One DoH listener in the API's dohFrontends, dnsdist 1.7.3's keys."""
    c = decl.doh.counters
    d: dict[str, Any] = {"address": decl.address(), "bad-requests": c.bad_requests,
                         "error-responses": c.error_responses, "get-queries": c.get_queries,
                         "http-connects": c.http_connects}
    for v in (1, 2):
        for status, n in c.status[v].items():
            d[f"http{v}-{status}-responses"] = n
        d[f"http{v}-queries"] = c.version_queries[v]
    d.update({"id": index, "post-queries": c.post_queries,
              "redirect-responses": c.redirect_responses, "valid-responses": c.valid_responses})
    return d
