"""What a worker reports and how the supervisor sums it into its own objects.

The supervisor serves no query, so its own Stats, servers, frontends, caches, rule counters,
dynamic blocks and rings only ever hold what the workers reported: every renderer (dumpStats,
showServers, topQueries, /metrics, /jsonstat, the API, carbon) reads them unchanged and shows
the sum over workers, in the one-process shape.

- Counters travel as deltas: a report carries what was counted since the previous report and
  zeroes it in the worker, and the supervisor adds it. A worker that dies loses at most what
  it counted since its last report; the totals never go back.
- Gauges (outstanding queries, cache entries, current TCP connections, latency averages,
  memory, CPU, descriptors) travel as values; the supervisor keeps each worker's latest and
  shows their sum (the maxima's maximum, the averages' mean).
- Ring entries since the last report travel too (bounded by the ring size), so top*, grepq
  and the dynamic-block rules in the supervisor see every worker's traffic.
Objects are matched by position (servers, frontends, rules, caches in pool order): every
process applies the same config and the same console commands in the same order.
"""
from __future__ import annotations

import resource
from typing import Any

from pydist.cache_counters import COUNTERS as CACHE_EXT_COUNTERS
from pydist.cache_summed import plain_type, summed_cache_class
from pydist.registry import Registry
from pydist.rules.actions import ContinueAction
from pydist.stats import _DYNAMIC, DOT_LATENCY_NAMES, ENTRY_NAMES, GAUGES, Stats, _attr
from pydist.stats import _fd_count, _rss

STAT_COUNTERS = tuple(_attr(n) for n in ENTRY_NAMES if n not in GAUGES and n not in _DYNAMIC)
STAT_MEANS = tuple(_attr(n) for n in ("latency-avg100", "latency-avg1000", "latency-avg10000",
                                      "latency-avg1000000", *DOT_LATENCY_NAMES))
SERVER_COUNTERS = ("queries", "responses", "send_errors", "reuseds", "tls_resumptions")
CACHE_COUNTERS = ("hits", "misses", "deferred_inserts", "deferred_lookups", "lookup_collisions",
                  "insert_collisions", "ttl_too_shorts")
# process figures a worker reports as values: dumpStats shows the supervisor's plus theirs
PROCESS_GAUGES = ("real-memory-usage", "special-memory-usage", "cpu-user-msec", "cpu-sys-msec",
                  "fd-usage")
Report = dict[str, Any]


def caches_of(reg: Registry) -> list[Any]:
    """Every packet cache once, in pool order (the same order in every process)."""
    seen: dict[int, Any] = {}
    for pool in reg.pools.values():
        if pool.cache is not None:
            seen.setdefault(id(pool.cache), pool.cache)
    return list(seen.values())


def _take(obj: Any, names: tuple[str, ...]) -> list[int]:
    out = []
    for name in names:
        out.append(getattr(obj, name))
        setattr(obj, name, 0)
    return out


def _take_dict(d: dict[str, Any]) -> dict[str, Any]:
    """A TCP counter dict: counters taken (zeroed), gauges read."""
    out = dict(d)
    for k, v in d.items():
        if not _is_gauge_key(k) and isinstance(v, int):
            d[k] = 0
    return out


def _doh_counters(fe: Any) -> Any:
    """A DoH listener's counters (showDOHFrontends, showDOHResponseCodes, /metrics)."""
    return vars(fe.doh.counters) if fe.doh is not None else None


def _tls_errors(fe: Any) -> Any:
    """A TLS listener's handshake error counters (showTLSErrorCounters)."""
    return getattr(fe.tls, "errors", None) if fe.tls is not None else None


def _take_tree(d: Any) -> Any:
    """Counters in nested dicts (attribute dicts included): their values, zeroed in place."""
    if d is None:
        return None
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _take_tree(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            out[k], d[k] = v, 0
    return out


def _add_tree(d: Any, delta: Any) -> None:
    if d is None or delta is None:
        return
    for k, v in delta.items():
        if isinstance(v, dict):
            _add_tree(d.get(k), v)
        elif v and k in d:
            d[k] += v


def _is_gauge_key(key: str) -> bool:
    return "Current" in key or "Max" in key or "Avg" in key


def collect(reg: Registry, rings: bool = True) -> Report:
    """A worker's report: its deltas since the previous report (zeroed here), its gauges, and
    with `rings` its ring entries since they were last shipped (kept here otherwise)."""
    st = reg.stats
    ru = resource.getrusage(resource.RUSAGE_SELF)
    report: Report = {
        "stats": _take(st, STAT_COUNTERS),
        "means": [getattr(st, a) for a in STAT_MEANS],
        "process": {"real-memory-usage": _rss(), "special-memory-usage": _rss(),
                    "cpu-user-msec": int(ru.ru_utime * 1000),
                    "cpu-sys-msec": int(ru.ru_stime * 1000), "fd-usage": _fd_count()},
        "servers": [(_take(s, SERVER_COUNTERS), _take_dict(s.tcp),
                     (s.outstanding, s.latency_usec, s.latency_usec_tcp)) for s in reg.servers],
        "frontends": [(_take(cs, ("queries", "responses")), _take_dict(cs.tcp_counters))
                      for fe in reg.frontends for cs in (fe.udp_state, fe.tcp_state)],
        "listeners": [(_take_tree(_doh_counters(fe)), _take_tree(_tls_errors(fe)))
                      for fe in reg.frontends],
        "caches": [(_take(c, CACHE_COUNTERS), c.entries) for c in caches_of(reg)],
        "rules": {k: [r.matches for r in chain.rules] for k, chain in reg.rules.items()},
        "actions": {k: [_take_counters(_counting_action(r)) for r in chain.rules]
                    for k, chain in reg.rules.items()},
        "dynblocks": _take_blocks(reg),
        "querycount": _take_query_counts(reg),
        "rings": ([], []),
    }
    for chain in reg.rules.values():
        for r in chain.rules:
            r.matches = 0
    ext = getattr(st, "cache_ext_counters", None)
    if ext is not None:
        report["cache_ext"] = _take(ext, tuple(a for a, _ in CACHE_EXT_COUNTERS.values()))
    ring = reg.rings
    if rings and ring is not None:
        report["rings"] = (list(ring.queries), list(ring.responses))
        ring.queries.clear()
        ring.responses.clear()
    return report


def _counting_action(rule: Any) -> Any:
    """The action of a rule that keeps counters (TeeAction's), through ContinueAction."""
    act = rule.action
    while isinstance(act, ContinueAction):
        act = act.action
    return act if getattr(act, "counters", ()) else None


def _take_counters(act: Any) -> list[Any] | None:
    """An action's counters since the last report, zeroed here (a list counter in place:
    the action holds a reference to it)."""
    if act is None:
        return None
    out: list[Any] = []
    for name in act.counters:
        v = getattr(act, name)
        if isinstance(v, list):
            out.append(list(v))
            v[:] = [0] * len(v)
        else:
            out.append(v)
            setattr(act, name, 0)
    return out


def _add_counters(act: Any, delta: list[Any] | None) -> None:
    if act is None or delta is None:
        return
    for name, d in zip(act.counters, delta):
        v = getattr(act, name)
        if isinstance(v, list):
            for i, n in enumerate(d[:len(v)]):
                v[i] += n
        elif d:
            setattr(act, name, v + d)


def _take_query_counts(reg: Registry) -> dict[str, int]:
    """setQueryCount's records since the last report: they move to the supervisor."""
    records = reg.query_counter.records
    out = dict(records)
    records.clear()
    return out


def _take_blocks(reg: Registry) -> dict[Any, int]:
    out: dict[Any, int] = {}
    dyn = reg.dynblocks
    for net, b in dyn.nets.items():
        if b.blocks:
            out[("net", net)], b.blocks = b.blocks, 0
    for key, (_text, b) in dyn.names.items():
        if b.blocks:
            out[("name", key)], b.blocks = b.blocks, 0
    return out


def reset(reg: Registry) -> None:
    """A freshly forked worker starts from zero (it inherited the supervisor's sums, and its
    summing classes when forked again after a restart)."""
    if isinstance(reg.stats, SummedStats):
        reg.stats.__class__ = Stats
    for c in caches_of(reg):
        c.__class__ = plain_type(c)
    collect(reg)
    for s in reg.servers:
        s.outstanding = 0
        s.latency_usec = s.latency_usec_tcp = 0.0
        _zero(s.tcp)
    for fe in reg.frontends:
        for cs in (fe.udp_state, fe.tcp_state):
            _zero(cs.tcp_counters)      # the keys stay: listeners count into them by name
    for a in STAT_MEANS:
        setattr(reg.stats, a, 0.0)


def _zero(d: dict[str, Any]) -> None:
    for k, v in d.items():
        d[k] = type(v)()


class Totals:
    """The supervisor's side: adds each report into the registry's objects, keeps gauges."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.gauges: dict[int, Report] = {}        # worker slot -> its latest report
        reg.stats.__class__ = SummedStats
        reg.stats.totals = self  # type: ignore[attr-defined]

    def forget(self, slot: int) -> None:
        """A dead worker's gauges no longer count (its counters stay in the totals)."""
        self.gauges.pop(slot, None)

    def add(self, slot: int, report: Report) -> None:
        reg = self.reg
        self.gauges[slot] = report
        _add(reg.stats, STAT_COUNTERS, report["stats"])
        for s, (counts, tcp, _g) in zip(reg.servers, report["servers"]):
            _add(s, SERVER_COUNTERS, counts)
            _add_dict(s.tcp, tcp)
        states = [cs for fe in reg.frontends for cs in (fe.udp_state, fe.tcp_state)]
        for cs, (counts, tcp) in zip(states, report["frontends"]):
            _add(cs, ("queries", "responses"), counts)
            _add_dict(cs.tcp_counters, tcp)
        for fe, (doh, tls_errors) in zip(reg.frontends, report["listeners"]):
            _add_tree(_doh_counters(fe), doh)
            _add_tree(_tls_errors(fe), tls_errors)
        for c, (counts, _entries) in zip(caches_of(reg), report["caches"]):
            _add(c, CACHE_COUNTERS, counts)
        for kind, matches in report["rules"].items():
            for r, m in zip(reg.rules[kind].rules, matches):
                r.matches += m
        for kind, counts in report["actions"].items():
            for r, delta in zip(reg.rules[kind].rules, counts):
                _add_counters(_counting_action(r), delta)
        ext = getattr(reg.stats, "cache_ext_counters", None)
        if ext is not None and "cache_ext" in report:
            _add(ext, tuple(a for a, _ in CACHE_EXT_COUNTERS.values()), report["cache_ext"])
        self._add_blocks(report["dynblocks"])
        records = reg.query_counter.records
        for key, n in report["querycount"].items():
            records[key] = records.get(key, 0) + n
        if reg.rings is not None:
            reg.rings.queries.extend(report["rings"][0])
            reg.rings.responses.extend(report["rings"][1])

    def _add_blocks(self, counts: dict[Any, int]) -> None:
        dyn = self.reg.dynblocks
        for (kind, key), n in counts.items():
            b = dyn.nets.get(key) if kind == "net" else (dyn.names.get(key) or (None, None))[1]
            if b is not None:
                b.blocks += n

    def settle(self) -> None:
        """Gauges from the latest reports, written where the renderers read them."""
        reg = self.reg
        reports = list(self.gauges.values())
        if not reports:
            return
        for i, a in enumerate(STAT_MEANS):
            setattr(reg.stats, a, sum(r["means"][i] for r in reports) / len(reports))
        for j, s in enumerate(reg.servers):
            rows = [r["servers"][j] for r in reports if j < len(r["servers"])]
            s.outstanding = sum(row[2][0] for row in rows)
            s.latency_usec = _mean_nonzero(row[2][1] for row in rows)
            s.latency_usec_tcp = _mean_nonzero(row[2][2] for row in rows)
            _gauges_dict(s.tcp, [row[1] for row in rows])
        states = [cs for fe in reg.frontends for cs in (fe.udp_state, fe.tcp_state)]
        for j, cs in enumerate(states):
            _gauges_dict(cs.tcp_counters, [r["frontends"][j][1] for r in reports
                                           if j < len(r["frontends"])])
        for j, c in enumerate(caches_of(reg)):
            try:
                c.__class__ = summed_cache_class(type(c))
            except TypeError:       # a cache class with __slots__: its own (empty) count
                continue
            c.summed_entries = sum(r["caches"][j][1] for r in reports if j < len(r["caches"]))

    def process_value(self, name: str) -> float:
        return sum(r["process"][name] for r in self.gauges.values())


def _add(obj: Any, names: tuple[str, ...], values: list[int]) -> None:
    for name, v in zip(names, values):
        if v:
            setattr(obj, name, getattr(obj, name) + v)


def _add_dict(d: dict[str, Any], delta: dict[str, Any]) -> None:
    for k, v in delta.items():
        if not _is_gauge_key(k) and isinstance(v, int):
            d[k] = d.get(k, 0) + v


def _gauges_dict(d: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    keys = {k for row in rows for k in row if _is_gauge_key(k)}
    for k in keys:
        values = [row.get(k, 0) for row in rows]
        if "Max" in k:
            d[k] = max(values)
        elif "Avg" in k:               # the workers that had connections
            d[k] = _mean_nonzero(values)
        else:
            d[k] = sum(values)


def _mean_nonzero(values: Any) -> float:
    vals = [v for v in values if v]
    return sum(vals) / len(vals) if vals else 0.0


class SummedStats(Stats):
    """The supervisor's Stats: process figures are its own plus its workers'."""

    totals: Totals

    def value(self, name: str) -> float:
        own = super().value(name)
        if name in PROCESS_GAUGES:
            return own + self.totals.process_value(name)
        return own
