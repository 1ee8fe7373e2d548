"""dynBlockRulesGroup() (facts §11): rate rules over the ring buffers that insert dynamic blocks
when apply() runs (typically from the Lua maintenance() function, once a second).

A rule fires for a client network when its count over the last `seconds` exceeds
rate x seconds; a warning rate inserts a NoOp "warning" entry instead. Excluded ranges are never
blocked unless an included range covers them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydist.dns.netmask import NetmaskGroup
from pydist.dynblocks import NONE, DynBlocks, count_queries, count_responses, over_rate


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


class DynBlockRulesGroup:
    """The rules of one group and the masks, ranges and quietness they apply with."""

    def __init__(self, blocks: DynBlocks, rings: Any = None) -> None:
        self.blocks = blocks
        self.rings = rings          # set by the engine; None in check-config and client modes
        self.rules: list[RateRule] = []
        self.masks = (32, 128)
        self.excluded = NetmaskGroup()
        self.included = NetmaskGroup()
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
