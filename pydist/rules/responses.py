"""Response chains (addResponseAction, addCacheHitResponseAction, addSelfAnsweredResponseAction)
run on an answer before it leaves, as dnsdist 1.7.3's applyRulesToResponse (facts §10.1):

- Allow and HeaderModify stop the chain and send; Drop stops and drops; ServFail sets RCODE=2,
  stops and sends; Delay and None continue (Delay keeps the last delay asked for).
- The answer is only parsed for the rules: with an empty chain none of this runs.
"""
from __future__ import annotations

from typing import Any

from pydist.backend.udp import InFlight
from pydist.dnsquestion import DNSQuestion
from pydist.rules import actions as A
from pydist.rules.selectors import RuleFailed


class DNSResponse(DNSQuestion):
    """An answer as response rules see it: the query's tags, and the server that answered."""

    __slots__ = ("server", "query_time")

    def __init__(self, data: bytes, qname_end: int, qtype: int, qclass: int, remote: Any,
                 frontend: Any = None, tcp: bool = False, now: float = 0.0,
                 tags: dict[str, str] | None = None, server: Any = None) -> None:
        super().__init__(data, qname_end, qtype, qclass, remote, frontend, tcp, now)
        self.tags = dict(tags) if tags else None
        self.server = server
        self.query_time = now               # when the query arrived (the caller sets it)


class RuleInFlight(InFlight):
    """An in-flight query that a rule touched: what its answer's rules and delay need later."""

    __slots__ = ("qtype", "qclass", "tags", "delay_ms", "tcp", "skip_cache", "temp_failure_ttl",
                 "unique_id")

    def set_rule_state(self, qtype: int, qclass: int, tags: dict[str, str] | None,
                       delay_ms: int, tcp: bool, skip_cache: bool = False) -> "RuleInFlight":
        self.qtype, self.qclass, self.tags = qtype, qclass, tags
        self.delay_ms, self.tcp, self.skip_cache = delay_ms, tcp, skip_cache
        self.temp_failure_ttl: int | None = None
        self.unique_id: bytes | None = None
        return self


def run_response_chain(rules: tuple, dr: Any) -> bool:
    """Run the rules in order on dr; False when the answer must be dropped."""
    for r in rules:
        if not r.selector.matches(dr):
            continue
        r.matches += 1
        verdict, extra = r.run(dr)
        if verdict == A.R_ALLOW or verdict == A.R_HEADER_MODIFY:
            return True
        if verdict == A.R_DROP:
            return False
        if verdict == A.R_SERVFAIL:
            dr.rcode = 2
            return True
        if verdict == A.R_DELAY:
            try:
                dr.delay_ms = int(extra or 0)
            except ValueError:
                dr.delay_ms = 0
    return True


def apply_response_rules(rules: tuple, resp: bytes, qname_end: int, qtype: int, qclass: int,
                         client: Any, frontend: Any, tcp: bool, now: float,
                         tags: dict[str, str] | None = None, delay_ms: int = 0,
                         server: Any = None, skip_cache: bool = False,
                         query: tuple[bytes | None, float] | None = None
                         ) -> tuple[bytes | None, int, bool]:
    """(answer after the chain or None when dropped, delay in ms for a UDP answer, whether a
    rule asked to keep it out of the cache). `query`: its message id and arrival time."""
    dr = DNSResponse(resp, qname_end, qtype, qclass, client, frontend, tcp, now, tags, server)
    if query is not None:
        dr.unique_id, dr.query_time = query
    dr.delay_ms = delay_ms
    dr.skip_cache = skip_cache
    try:
        if not run_response_chain(rules, dr):
            return None, 0, True
    except RuleFailed:          # a selector that throws in dnsdist: the answer is dropped
        return None, 0, True
    return bytes(dr.data), (0 if tcp else dr.delay_ms), dr.skip_cache
