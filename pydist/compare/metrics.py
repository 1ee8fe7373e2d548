"""Scraping /metrics from both sides and comparing what the replayed traffic should move identically."""
from __future__ import annotations

import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from pydist.compare.diff import Difference
from pydist.stats import DOT_LATENCY_NAMES

# Metrics pydist lists on purpose where dnsdist 1.7.3 has none (issue 6 names them, as dnsdist
# 1.8 does): reported as known additions, not as differences.
KNOWN_ADDITIONS = frozenset("dnsdist_" + n.replace("-", "_") for n in DOT_LATENCY_NAMES)

# counters that identical traffic must move identically (timing-free ones only)
COMPARED = re.compile(
    r"^dnsdist_(queries|responses|rdqueries|empty_queries|acl_drops|rule_(drop|nxdomain|refused|servfail|truncated)"
    r"|self_answered|no_policy|noncompliant_(queries|responses)|cache_(hits|misses)|frontend_(noerror|nxdomain|servfail)"
    r"|dyn_blocked|trunc_failures|rule_hits|pool_cache_(hits|misses|entries)"
    r"|frontend_(queries|responses))$")


def scrape(port: int, api_key: str, timeout: float = 5.0) -> dict[str, float]:
    """`name{labels}` -> value of one side's /metrics."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": api_key})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read().decode("utf-8", "replace")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            key = f"{sample.name}{{{labels}}}"
            # servers mapped to the same stand-in share their labels: add them up
            samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def _rule_hits(samples: dict[str, float]) -> list[float]:
    return sorted(v for k, v in samples.items() if k.startswith("dnsdist_rule_hits{"))


def _total(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(name + "{"))


def known_additions(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """The known pydist additions present on one side only, as "not comparable" notes."""
    names_a = {k.split("{", 1)[0] for k in a}
    names_b = {k.split("{", 1)[0] for k in b}
    extra = sorted((names_a ^ names_b) & KNOWN_ADDITIONS)
    if not extra:
        return []
    return [f"/metrics: {', '.join(extra)} listed on one side only (pydist's latency-dot-avg*, "
            "from later dnsdist; 1.7.3 has none)"]


POLICY_TOTALS = ("dnsdist_server_queries", "dnsdist_server_responses", "dnsdist_server_drops")
# dnsdist 1.7.3 leaves a UDP client's answer out of the responses of a TCP-only or DoH server
# that carried it: with such servers, that total depends on the policy's choices too
TCP_CARRIED_NOTE = ("/metrics: dnsdist_server_responses (all servers) not compared: TCP-only or "
                    "DoH servers do not count their UDP clients' answers, so the total depends on "
                    "which server the policy picked")


def compare_metrics(a: dict[str, float], b: dict[str, float], normalize_a, normalize_b,
                    tcp_carried: bool = False) -> list[Difference]:
    """Metric names present on one side only, and compared counters that differ."""
    na = {normalize_a(k): v for k, v in a.items()}
    nb = {normalize_b(k): v for k, v in b.items()}
    names_a = {k.split("{", 1)[0] for k in na} - KNOWN_ADDITIONS
    names_b = {k.split("{", 1)[0] for k in nb} - KNOWN_ADDITIONS
    diffs: list[Difference] = []
    if names_a != names_b:
        diffs.append(Difference("metric-names", f"only on side A: {sorted(names_a - names_b)[:8]}; "
                                                f"only on side B: {sorted(names_b - names_a)[:8]}"))
    for key in sorted(set(na) & set(nb)):
        name = key.split("{", 1)[0]
        if name == "dnsdist_rule_hits" or not COMPARED.match(name):
            continue
        if na[key] != nb[key]:
            diffs.append(Difference("metric-value", f"{key}: {na[key]:g} vs {nb[key]:g}"))
    for name in POLICY_TOTALS:
        if tcp_carried and name == "dnsdist_server_responses":
            continue
        # which server of a pool got a query is the policy's choice: compare the totals
        total_a, total_b = _total(a, name), _total(b, name)
        if total_a != total_b:
            diffs.append(Difference("metric-value", f"{name} (all servers): {total_a:g} vs {total_b:g}"))
    if _rule_hits(a) != _rule_hits(b):
        diffs.append(Difference("metric-value", f"dnsdist_rule_hits: {_rule_hits(a)} vs {_rule_hits(b)}"))
    return diffs
