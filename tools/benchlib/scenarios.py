"""The benchmark's scenarios: what each one sends, over what, and how it is bounded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """One row of the report."""

    name: str
    description: str
    queries: str  # "hit" (hot_names looped), "unique" (never seen), "fill" (exactly fill_names)
    tcp: bool = False
    dot: bool = False  # DNS over TLS (dnsperf -m dot) to an addTLSLocal listener
    rate: int | None = None  # fixed qps (dnsperf -Q), None = as fast as possible
    latency: bool = False  # collect per-query latencies (dnsperf -v)
    fresh_per_rep: bool = False  # restart both servers for every repetition (empty cache)
    fill_names: int = 0
    rules: int = 0  # non-matching QTypeRule rules added to the config under test
    lua_action: bool = False  # plus one AllRule() LuaAction returning DNSAction.None
    hot_names: int = 100  # distinct names of a "hit" run; above 100, one pass fills the cache first
    cache_size: int = 100_000  # newPacketCache's maxEntries in the config under test


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("udp-hit", "cache hits over UDP", "hit"),
        Scenario("udp-miss", "cache misses over UDP (unique names)", "unique"),
        Scenario("tcp-hit", "cache hits over TCP", "hit", tcp=True),
        Scenario("dot-hit", "cache hits over DNS over TLS (addTLSLocal)", "hit", dot=True),
        Scenario("udp-hit-10rules", "cache hits over UDP through 10 non-matching rules (no Lua)",
                 "hit", rules=10),
        Scenario("udp-hit-lua", "cache hits over UDP through one LuaAction (DNSAction.None)",
                 "hit", lua_action=True),
        Scenario("latency", "cache hits over UDP at a fixed 10,000 qps", "hit",
                 rate=10_000, latency=True),
        Scenario("udp-hit-20rules-1k", "cache hits over UDP, 1,000 hot names, 20 non-matching "
                 "rules", "hit", rules=20, hot_names=1000, cache_size=200_000),
        Scenario("udp-hit-20rules-100k", "cache hits over UDP, 100,000 hot names, 20 "
                 "non-matching rules", "hit", rules=20, hot_names=100_000, cache_size=200_000),
        Scenario("hit-full-rss", "cache hits over UDP on 100,000 names in a full 100,000-entry "
                 "cache, RSS after", "hit", hot_names=100_000),
        Scenario("cache-fill", "fill a 100,000-entry cache with 100,000 unique names, RSS after",
                 "fill", fresh_per_rep=True, fill_names=100_000),
    )
}

DEFAULT_ORDER = tuple(SCENARIOS)


def parse_list(text: str) -> list[Scenario]:
    """Scenarios from a comma-separated list ("all" for every one).

    :raises ValueError: naming an unknown scenario.
    """
    if text.strip() == "all":
        return [SCENARIOS[n] for n in DEFAULT_ORDER]
    out = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(DEFAULT_ORDER)}")
        out.append(SCENARIOS[name])
    return out
