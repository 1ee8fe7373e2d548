"""dynBlockRulesGroup() (facts §11): rate rules over the ring buffers that insert dynamic blocks
when apply() runs (typically from the Lua maintenance() function, once a second).

A rule fires for a client network when its count over the last `seconds` exceeds
rate x seconds; a warning rate inserts a NoOp "warning" entry instead. Excluded ranges are never
blocked unless an included range covers them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pydist.dns.netmask import NetmaskGroup
from pydist.dns.wire import WireError, question_end
from pydist.rules.names import DNSName, SuffixMatchNode, labels_from_wire
from pydist.dynblocks import NONE, DynBlocks, count_queries, count_responses, over_rate
from pydist.transport import Transport


@dataclass
class RateRule:
    """One set*Rate rule: what to count, the threshold, and the block it inserts."""
    kind: str                  # query | qtype | rcode | rcode-ratio | bytes
    rate: float
    seconds: int
    reason: str
    duration: int
    action: int = NONE
    warning: float = 0.0
    arg: int | None = None     # the qtype or rcode counted
    minimum: int = 0           # rcode-ratio: responses needed before the ratio counts


@dataclass
class Stat:
    """What StatNode counts per name (the fields the Lua visitor reads)."""
    queries: int = 0
    noerrors: int = 0
    nxdomains: int = 0
    servfails: int = 0
    drops: int = 0
    bytes: int = 0

    def add(self, other: "Stat") -> None:
        self.queries += other.queries
        self.noerrors += other.noerrors
        self.nxdomains += other.nxdomains
        self.servfails += other.servfails
        self.drops += other.drops
        self.bytes += other.bytes


@dataclass
class StatNode:
    """One name of the response tree; `fullname` is its label as first seen and its parent's
    fullname ("" for the root), as dnsdist builds it."""
    fullname: str = ""
    labels_count: int = 0
    stat: Stat = field(default_factory=Stat)
    children: dict[bytes, "StatNode"] = field(default_factory=dict)

    def submit(self, labels: tuple[bytes, ...], rcode: int, size: int) -> None:
        """Count one response for the name `labels` (rcode -1: a drop or timeout)."""
        node = self
        for i in range(len(labels) - 1, -1, -1):
            key = labels[i].lower()
            child = node.children.get(key)
            if child is None:         # as dnsdist: the label as first seen, then the parent's
                text = labels[i].decode("latin-1") + "." + node.fullname
                child = node.children[key] = StatNode(text, len(labels) - i)
            node = child
        s = node.stat
        s.queries += 1
        s.bytes += size
        if rcode == 0:
            s.noerrors += 1
        elif rcode == 3:
            s.nxdomains += 1
        elif rcode == 2:
            s.servfails += 1
        elif rcode < 0:
            s.drops += 1

    def visit(self, visitor: Callable[["StatNode", Stat, Stat], None]) -> Stat:
        """Post-order, children by label (as dnsdist's StatNode::visit): visitor(node, own
        counts, counts of the node and everything below it)."""
        total = Stat(**vars(self.stat))
        for key in sorted(self.children):
            total.add(self.children[key].visit(visitor))
        visitor(self, self.stat, total)
        return total


@dataclass
class SuffixRule:
    """setSuffixMatchRule: the visitor decides, per name of the response tree, what to block."""
    seconds: int
    reason: str
    duration: int
    action: int
    visitor: Callable[[StatNode, Stat, Stat], tuple[bool, str | None]]


def response_tree(rings: Any, seconds: int, now: float) -> StatNode:
    """The names answered by servers in the last `seconds` (timeouts count as drops), oldest
    first as dnsdist walks its ring (a name's first spelling wins). As 1.7.3 (observed): rule
    answers are not in its ring, a timeout adds no bytes, and an answer relayed over TCP
    counts its 2-byte length prefix (DoH answers, relayed over TCP too here, are counted so)."""
    cutoff = now - seconds if seconds else 0.0
    window = []
    for entry in reversed(rings.responses):
        if entry[0] < cutoff:
            break
        if entry[4] is not None or (entry[3] is not None and entry[3] < 0):  # not a rule's
            window.append(entry)
    root = StatNode()
    for entry in reversed(window):
        pkt = entry[2]
        try:
            question_end(pkt)
            labels = labels_from_wire(pkt, 12)
        except (WireError, IndexError):
            continue
        if entry[3] is not None and entry[3] < 0:
            root.submit(labels, -1, 0)
        else:
            tcp = len(entry) > 5 and entry[5] is Transport.DO53_TCP    # its socket's
            root.submit(labels, pkt[3] & 0x0F, len(pkt) + (2 if tcp else 0))
    return root


class DynBlockRulesGroup:
    """The rules of one group and the masks, ranges and quietness they apply with."""

    def __init__(self, blocks: DynBlocks, rings: Any = None) -> None:
        self.blocks = blocks
        self.rings = rings          # set by the engine; None in check-config and client modes
        self.rules: list[RateRule] = []
        self.masks = (32, 128, 0)       # setMasks(v4, v6, port bits)
        self.excluded = NetmaskGroup()
        self.included = NetmaskGroup()
        self.excluded_domains = SuffixMatchNode()
        self.suffix_rule: SuffixRule | None = None
        self.quiet = False

    def add(self, rule: RateRule) -> None:
        """A new rule of a kind (and qtype/rcode) replaces the previous one, as in dnsdist."""
        self.rules = [r for r in self.rules if (r.kind, r.arg) != (rule.kind, rule.arg)]
        self.rules.append(rule)

    def apply(self, now: float | None = None) -> None:
        rings = self.rings() if callable(self.rings) else self.rings
        if rings is None:
            return
        now = time.time() if now is None else now
        for rule in self.rules:
            counts, totals = self._counts(rule, rings, now)
            for net, n in counts.items():
                if self._exempt(net):
                    continue
                self._judge(rule, net, n, totals, rings, now)
        if self.suffix_rule is not None:
            self._apply_suffix_rule(self.suffix_rule, rings, now)

    def _apply_suffix_rule(self, rule: SuffixRule, rings: Any, now: float) -> None:
        def visit(node: StatNode, own: Stat, total: Stat) -> None:
            block, reason = rule.visitor(node, own, total)
            if not block:
                return
            name = DNSName.from_text(node.fullname)
            if self.excluded_domains.check(name):
                return
            self.blocks.insert_name(name.key, str(name), reason or rule.reason, rule.duration,
                                    rule.action, now, quiet=self.quiet)
        response_tree(rings, rule.seconds, now).visit(visit)

    def _counts(self, rule: RateRule, rings: Any, now: float) -> tuple[Any, Any]:
        k, s, m = rule.kind, rule.seconds, self.masks
        if k == "query":
            return count_queries(rings, s, now, None, m), None
        if k == "qtype":
            return count_queries(rings, s, now, rule.arg, m), None
        if k == "rcode":
            return count_responses(rings, s, now, rule.arg, False, m), None
        if k == "bytes":
            return count_responses(rings, s, now, None, True, m), None
        return (count_responses(rings, s, now, rule.arg, False, m),
                count_responses(rings, s, now, None, False, m))

    def _judge(self, rule: RateRule, net: Any, n: int, totals: Any, rings: Any,
               now: float) -> None:
        if rule.kind == "rcode-ratio":
            total = totals.get(net, 0)
            if total < max(1, rule.minimum):
                return
            ratio = n / total
            block = ratio > rule.rate
            warn = bool(rule.warning) and ratio > rule.warning
        else:
            responses = rule.kind in ("rcode", "bytes")
            block = bool(over_rate({net: n}, rule.rate, rule.seconds, rings, now, responses))
            warn = bool(rule.warning) and bool(
                over_rate({net: n}, rule.warning, rule.seconds, rings, now, responses))
        if block or warn:
            self.blocks.insert_network(net, rule.reason, rule.duration, rule.action, now,
                                       warning=not block, quiet=self.quiet, shown=str(net))

    def _exempt(self, net: Any) -> bool:
        host = str(net.network_address)
        return self.excluded.match(host) and not self.included.match(host)

    def __str__(self) -> str:
        return ""
