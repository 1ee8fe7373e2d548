"""The difference between the running registry and a freshly evaluated one, matched by
identity: servers by address and name, caches by pool and settings, listeners by everything
that shapes their sockets, rules by UUID or by their text and position. Computing it touches
nothing; pydist/reload/swap.py applies it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydist.backend.server import DownstreamState
from pydist.cache import PacketCache
from pydist.cache_summed import plain_type
from pydist.registry import FrontendDecl, Registry
from pydist.rules.chain import Rule

# PacketCache settings that decide what an entry is and how long it lives: equal ones make
# the old entries valid under the new config; max_entries alone may differ (a resize)
CACHE_SETTINGS = ("max_ttl", "min_ttl", "temporary_failure_ttl", "max_negative_ttl",
                  "stale_ttl", "dont_age", "number_of_shards", "deferrable_insert_lock",
                  "parse_ecs", "keep_stale_data", "cookie_hashing", "skip_options")


@dataclass
class CachePlan:
    """One packet cache of the new config and the running cache it takes over, if any."""
    new: PacketCache
    old: PacketCache | None = None
    resized: bool = False


@dataclass
class ReloadPlan:
    kept_servers: list[tuple[DownstreamState, DownstreamState]] = field(default_factory=list)
    changed_servers: list[tuple[DownstreamState, DownstreamState]] = field(default_factory=list)
    added_servers: list[DownstreamState] = field(default_factory=list)
    removed_servers: list[DownstreamState] = field(default_factory=list)
    caches: list[CachePlan] = field(default_factory=list)
    kept_listeners: list[tuple[FrontendDecl, FrontendDecl]] = field(default_factory=list)
    added_listeners: list[FrontendDecl] = field(default_factory=list)
    removed_listeners: list[FrontendDecl] = field(default_factory=list)
    kept_rules: list[tuple[Rule, Rule]] = field(default_factory=list)    # (old, new)
    rules_added: int = 0
    rules_removed: int = 0

    def summary(self) -> str:
        """The one log line: what changed, said plainly."""
        caches_resized = sum(1 for c in self.caches if c.resized)
        caches_new = sum(1 for c in self.caches if c.old is None)
        parts = [f"servers +{len(self.added_servers)} -{len(self.removed_servers)} "
                 f"~{len(self.changed_servers)} ={len(self.kept_servers)}",
                 f"rules +{self.rules_added} -{self.rules_removed} ={len(self.kept_rules)}",
                 f"caches kept {len(self.caches) - caches_new} resized {caches_resized} "
                 f"new {caches_new}",
                 f"listeners +{len(self.added_listeners)} -{len(self.removed_listeners)} "
                 f"={len(self.kept_listeners)}"]
        return ", ".join(parts)

    def details(self) -> dict[str, list[str]]:
        """The names behind the summary's figures (console and API)."""
        return {
            "servers_added": [s.name_with_addr() for s in self.added_servers],
            "servers_removed": [s.name_with_addr() for s in self.removed_servers],
            "servers_changed": [n.name_with_addr() for _, n in self.changed_servers],
            "listeners_added": [f"{fe.kind} {fe.address()}" for fe in self.added_listeners],
            "listeners_removed": [f"{fe.kind} {fe.address()}" for fe in self.removed_listeners],
            "caches_resized": [f"{c.old.max_entries} -> {c.new.max_entries}"
                               for c in self.caches if c.resized],
        }


def plan(old: Registry, new: Registry) -> ReloadPlan:
    p = ReloadPlan()
    _servers(p, old.servers, new.servers)
    _caches(p, old, new)
    _listeners(p, old.frontends, new.frontends)
    for kind, chain in new.rules.items():
        _rules(p, old.rules[kind].rules, chain.rules)
    return p


def server_key(s: DownstreamState) -> tuple[str, str]:
    return (s.address_str, s.name)


def _declared(s: DownstreamState) -> str:
    """The options that make a server what it is (its pools are applied apart)."""
    return repr(sorted((k, repr(v)) for k, v in s.options.items() if k != "pool"))


def _servers(p: ReloadPlan, old: list[DownstreamState], new: list[DownstreamState]) -> None:
    running = {server_key(s): s for s in old}
    for s in new:
        o = running.pop(server_key(s), None)
        if o is None:
            p.added_servers.append(s)
        elif _declared(o) == _declared(s):
            p.kept_servers.append((o, s))
        else:
            p.changed_servers.append((o, s))
    p.removed_servers.extend(running.values())


def cache_settings(cache: PacketCache) -> tuple[object, ...]:
    return tuple(getattr(cache, a, None) for a in CACHE_SETTINGS)


def _caches(p: ReloadPlan, old: Registry, new: Registry) -> None:
    """A new pool's cache takes over the cache its pool had, when their settings match."""
    seen: set[int] = set()
    for name, pool in new.pools.items():
        cache = pool.cache
        if cache is None or id(cache) in seen:
            continue
        seen.add(id(cache))
        before = old.pools.get(name)
        prev = before.cache if before is not None else None
        # (plain_type: with worker processes the supervisor's caches sum the workers' entries)
        if prev is not None and plain_type(prev) is plain_type(cache) \
                and cache_settings(prev) == cache_settings(cache):
            p.caches.append(CachePlan(cache, prev, prev.max_entries != cache.max_entries))
        else:
            p.caches.append(CachePlan(cache))


def listener_key(fe: FrontendDecl) -> str:
    """Everything that shapes a listener's sockets and what it serves on them."""
    tls = fe.tls
    tls_part = None if tls is None else (tuple(tls.certs), tuple(tls.keys),
                                         _fingerprint(tls.options))
    doh_part = None if fe.doh is None else tuple(fe.doh.urls)
    crypt = fe.dnscrypt
    crypt_part = None if crypt is None else (crypt.provider_name, tuple(crypt.paths))
    return repr((fe.kind, fe.host, fe.port, fe.udp, fe.tcp, _fingerprint(fe.options),
                 tls_part, doh_part, crypt_part))


def _fingerprint(options: dict[str, Any]) -> str:
    return repr(sorted((str(k), repr(v)) for k, v in options.items()))


def _listeners(p: ReloadPlan, old: list[FrontendDecl], new: list[FrontendDecl]) -> None:
    running: dict[str, list[FrontendDecl]] = {}
    for fe in old:
        running.setdefault(listener_key(fe), []).append(fe)
    for fe in new:
        same = running.get(listener_key(fe))
        if same:
            p.kept_listeners.append((same.pop(0), fe))
        else:
            p.added_listeners.append(fe)
    p.removed_listeners.extend(fe for group in running.values() for fe in group)


def rule_text(rule: Rule) -> tuple[str, str, str]:
    return (rule.name, str(rule.selector), str(rule.action))


def _rules(p: ReloadPlan, old: tuple[Rule, ...], new: tuple[Rule, ...]) -> None:
    """A rule is unchanged when its UUID was given and is the same, or when the rule at its
    position had the same name, selector and action text."""
    by_uuid = {r.uuid: r for r in old}
    taken: set[int] = set()
    for i, r in enumerate(new):
        o = by_uuid.get(r.uuid)
        if o is None and i < len(old) and rule_text(old[i]) == rule_text(r):
            o = old[i]
        if o is None or id(o) in taken:
            p.rules_added += 1
            continue
        taken.add(id(o))
        p.kept_rules.append((o, r))
    p.rules_removed += len(old) - len(taken)
