"""Inspection commands whose output users read: showServers, dumpStats, showPools..."""
from __future__ import annotations

import time
from typing import Any

from collections import Counter

from luaapi.convert import as_bool, as_int, is_table, table_to_dict
from pydist.dns.wire import name_to_text
from pydist.rings import GrepFilter, Rings, grepq, response_latency
from pydist.stats import format_dump_stats


def format_servers(servers: list, show_uuids: bool = False) -> str:
    """showServers() exactly as dnsdist 1.7.3 lays it out (facts §6.1)."""
    def row(idx: str, uuid: str, name: str, addr: str, state: str, qps: str, qlim: str, order: str,
            weight: str, queries: str, drops: str, drate: str, lat: str, outstanding: str,
            pools: str) -> str:
        line = f"{idx:<3} "
        if show_uuids:
            line += f"{uuid:<36} "
        line += f"{name[:20]:<20} {addr} "
        line = line.ljust(55 + (37 if show_uuids else 0))
        line += f"{state:>5} {qps:>7} {qlim:>7} {order:>3} {weight:>2} {queries:>10} {drops:>7} {drate:>5} "
        line = line.ljust(109 + (37 if show_uuids else 0))
        line += f"{lat:>5} {outstanding:>11} {pools}"
        return line + "\n"

    out = row("#", "UUID", "Name", "Address", "State", "Qps", "Qlim", "Ord", "Wt", "Queries",
              "Drops", "Drate", "Lat", "Outstanding", "Pools")
    total_qps = 0.0
    total_q = total_d = 0
    for i, s in enumerate(servers):
        pools = " ".join(p for p in s.pools if p)
        out += row(str(i), s.uuid, s.name, s.address_str, s.status_text(),
                   f"{s.query_load:.1f}", str(s.qps.get_rate()), str(s.order), str(s.weight),
                   str(s.queries), str(s.reuseds), f"{s.drop_rate:.1f}",
                   f"{s.latency_usec / 1000.0:.1f}", str(s.outstanding), pools)
        total_qps += s.query_load
        total_q += s.queries
        total_d += s.reuseds
    out += row("All", "", "", "", "", f"{float(int(total_qps)):.1f}", "", "", "", str(total_q),
               str(total_d), "", "", "", "")
    return out


def _qname(pkt: bytes, labels: int | None) -> str | None:
    """Lowercased qname of a ring entry, cut to its last `labels` labels when asked."""
    try:
        name = name_to_text(pkt).lower()
    except IndexError:
        return None
    if labels:
        parts = name.rstrip(".").split(".")
        name = ".".join(parts[-labels:]) + "." if name != "." else name
    return name


def format_top(counts: Counter, top: int) -> str:
    """top*() tables: rank, key, count, percentage, then the Rest line (dnsdist's format)."""
    total = sum(counts.values())
    out = []
    rank = 1
    rest = 0
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if rank > top:
            rest += n
            continue
        out.append("%4d  %-40s %4d %4.1f%%\n" % (rank, key, n, 100.0 * n / total))
        rank += 1
    out.append("%4d  %-40s %4d %4.1f%%\n" % (rank, "Rest", rest,
                                              100.0 * rest / total if total else 100.0))
    return "".join(out)


def register(rt: Any) -> None:
    reg = rt.registry

    def rings() -> Any:
        return reg.rings if reg.rings is not None else Rings(1)

    def top_queries(top: Any = 10, labels: Any = None, *a: Any) -> None:
        counts: Counter = Counter()
        for entry in list(rings().queries):
            name = _qname(entry[2], as_int(labels) if labels is not None else None)
            if name is not None:
                counts[name] += 1
        rt.show(format_top(counts, as_int(top)))
    rt.fn("topQueries", top_queries, no_side_effect=True)

    def top_responses(top: Any = 10, rcode: Any = 0, labels: Any = None, *a: Any) -> None:
        counts: Counter = Counter()
        want = as_int(rcode)
        for entry in list(rings().responses):
            pkt = entry[2]
            if entry[3] < 0 or len(pkt) < 12 or pkt[3] & 0x0F != want:
                continue
            name = _qname(pkt, as_int(labels) if labels is not None else None)
            if name is not None:
                counts[name] += 1
        rt.show(format_top(counts, as_int(top)))
    rt.fn("topResponses", top_responses, no_side_effect=True)

    def top_slow(top: Any = 10, msec: Any = 500, labels: Any = None, *a: Any) -> None:
        """Answers slower than msec (timeouts always are), by name, as dnsdist counts them."""
        counts: Counter = Counter()
        limit = as_int(msec) * 1000
        for entry in list(rings().responses):
            if 0 <= entry[3] <= limit:
                continue
            name = _qname(entry[2], as_int(labels) if labels is not None else None)
            if name is not None:
                counts[name] += 1
        rt.show(format_top(counts, as_int(top)))
    rt.fn("topSlow", top_slow, no_side_effect=True)

    def top_bandwidth(top: Any = 10, *a: Any) -> None:
        """Bytes per client address, its queries and its answers added up (as dnsdist's
        getTopBandwidth walks both rings; timeouts carry none)."""
        counts: Counter = Counter()
        for entry in list(rings().queries):
            if entry[1]:
                counts[entry[1][0]] += len(entry[2])
        for entry in list(rings().responses):
            if entry[1]:
                counts[entry[1][0]] += len(entry[2]) if entry[3] >= 0 else 0
        rt.show(format_top(counts, as_int(top)))
    rt.fn("topBandwidth", top_bandwidth, no_side_effect=True)

    def top_clients(top: Any = 10, *a: Any) -> None:
        counts: Counter = Counter(entry[1][0] for entry in list(rings().queries) if entry[1])
        rt.show(format_top(counts, as_int(top)))
    rt.fn("topClients", top_clients, no_side_effect=True)

    def grep_q(inp: Any, limit: Any = None, *a: Any) -> None:
        pats = [str(v) for v in table_to_dict(inp).values()] if is_table(inp) else [
            str(int(inp)) if isinstance(inp, float) and inp.is_integer() else str(inp)]
        try:
            flt = GrepFilter(pats)
        except ValueError as e:
            rt.show(str(e))
            return
        lim = as_int(limit) if limit is not None else None
        rt.show(grepq(rings(), flt, lim, time.time()))
    rt.fn("grepq", grep_q, no_side_effect=True)

    def show_response_latency(*a: Any) -> None:
        rt.show(response_latency(rings()))
    rt.fn("showResponseLatency", show_response_latency, no_side_effect=True)

    def delta(*a: Any) -> None:
        if rt.executor is not None:
            rt.show(rt.executor.render_delta())
    rt.fn("delta", delta, no_side_effect=True)

    def show_servers(opts: Any = None, *a: Any) -> None:
        uuids = False
        if is_table(opts):
            uuids = as_bool(table_to_dict(opts).get("showUUIDs", False))
        rt.show(format_servers(reg.servers, uuids))
    rt.fn("showServers", show_servers, no_side_effect=True)

    def dump_stats(*a: Any) -> None:
        rt.show(format_dump_stats(reg.stats.snapshot()))
    rt.fn("dumpStats", dump_stats, no_side_effect=True)

    def get_counters(*a: Any) -> Any:
        from pydist.stats import DOUBLES, GAUGES
        return rt.lua.table_from({k: v for k, v in reg.stats.snapshot()
                                  if k not in GAUGES and k not in DOUBLES})
    rt.fn("getStatisticsCounters", get_counters, no_side_effect=True)

    def show_pools(*a: Any) -> None:
        def line(name: str, cache: str, policy: str, servers: str) -> str:
            # boost::format "%1$-20.20s %|25t|%2$20s %|25t|%3$20s %|50t|%4%"
            return f"{name[:20]:<20} ".ljust(25) + f"{cache:>20} {policy:>20} {servers}\n"
        out = line("Name", "Cache", "ServerPolicy", "Servers")
        for name in sorted(reg.pools):
            pool = reg.pools[name]
            cache = pool.cache.to_string() if pool.cache is not None else ""
            policy = reg.policy_for(pool).name
            servers = ", ".join(f"{s.name} {s.address_str}" for s in pool.servers)
            out += line(name, cache, policy, servers)
        rt.show(out)
    rt.fn("showPools", show_pools, no_side_effect=True)
