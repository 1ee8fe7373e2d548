"""The rule side of the packet path (kept apart so packet_path.py stays the one place the order
of the steps is written): dynamic blocks and query rules before the pool, the pure-chain memo that
keeps the fast cache path, ECS for useClientSubnet servers (wire work in pydist.dns.ecs), what an
in-flight query remembers for its answer, and the response chain on backend answers."""
from __future__ import annotations

import time
from itertools import islice
from typing import Any

from pydist.dns.ecs import ecs_defaults, query_for_backend
from pydist.dns.wire import WireError, parse_question
from pydist.dnsquestion import DNSQuestion
from pydist.rules.chain import (
    RULES,
    apply_dynblocks,
    apply_query_rules,
    is_pure_chain,
)
from pydist.rules.responses import RuleInFlight, apply_response_rules
from pydist.rules.selectors import RuleFailed
from pydist.transport import DATAGRAM, Transport
from pydist.verdict import DROP, QueryOrigin, Verdict

RULE_MEMO_MIN = 65536     # remembered pass-through queries of a pure chain, at least
RULE_MEMO_EVICT = 16      # when full, the oldest 1/16th of the memo is forgotten
RULE_MEMO_NOTES = 1024    # distinct matched-rule tuples shared before sharing starts over


class RuleMemo(dict):
    """A pure chain's pass-through verdicts: the rules that matched (all with pure actions),
    per query bytes after the ID, as notes `(memo, matched)`.

    A note waits here while its query is in flight: the answer's cache entry takes it
    (RulePath.note_entry), or else the exact-bytes level's record that first serves those
    bytes does (PacketCache.lookup_exact pops it). A hot name then costs no lookup here and
    no memory here (issue 18 item 3: 100,000 hot names cost what 1,000 do). A note is current
    while its first item is the path's memo: a new chain makes a new memo, and every note of
    the old one stops counting at once.
    Notes are shared: one per distinct matched tuple (usually one: nothing matched)."""

    __slots__ = ("notes",)

    def __init__(self) -> None:
        super().__init__()
        self.notes: dict[tuple, tuple] = {}

    def note(self, matched: tuple) -> tuple:
        """The shared note for `matched`."""
        note = self.notes.get(matched)
        if note is None:
            if len(self.notes) >= RULE_MEMO_NOTES:
                self.notes.clear()        # notes given out stay current; only sharing restarts
            note = self.notes[matched] = (self, matched)
        return note

    def retire(self) -> None:
        """This memo is replaced: forget what waits, and let go of the notes (records keep
        theirs, which point at this emptied memo, so they no longer count)."""
        self.clear()
        self.notes.clear()


class RulePath:
    """Mixed into PacketPath; reads its reg, settings, stats and _restore."""

    reg: Any
    settings: Any

    def refresh_rules(self) -> bool:
        """Take the chains and the dynamic blocks; True when cache hits may skip the rules."""
        rules = self.reg.rules
        self.query_rules = rules["query"].rules
        self.response_rules = rules["response"].rules
        self.cachehit_rules = rules["cachehit"].rules
        self.selfanswered_rules = rules["selfanswered"].rules
        self.dynblocks = self.reg.dynblocks if self.reg.dynblocks.active else None
        pure = bool(self.query_rules) and is_pure_chain(self.query_rules)
        old = getattr(self, "rule_memo", None)
        if old is not None:
            old.retire()
        # a pure chain's pass-through verdict per query bytes: lets cache hits skip the chain
        self.rule_memo: RuleMemo | None = RuleMemo() if pure else None
        self.rule_memo_max = memo_size(self.default_pool.cache)
        return (not self.query_rules or pure) and not self.cachehit_rules

    def rule_in_flight(self, data: bytes, addr: Any, fe: Any, now: float, cache: Any,
                       cache_key: Any, qname_end: int, qtype: int, qclass: int, flags: int,
                       transport: Transport, dq: DNSQuestion | None, udp: bool,
                       skip_cache: bool) -> RuleInFlight:
        """An in-flight query that carries what its answer's rules and delay need."""
        state = RuleInFlight(data[:2], addr, fe, data[12:qname_end + 4], now, self.tick,
                             cache, cache_key, data, qname_end, flags, transport)
        state.set_rule_state(qtype, qclass, dq.tags if dq is not None else None,
                             dq.delay_ms if dq is not None else 0, not udp, skip_cache)
        if dq is not None:
            state.temp_failure_ttl = dq.temp_failure_ttl
            state.unique_id = dq.unique_id
        return state

    def _add_ecs(self, data: bytes, addr: Any, dq: DNSQuestion | None, cache: Any,
                 server: Any) -> tuple[bytes | None, int, bytes | None]:
        """useClientSubnet, after the policy and before the cache (facts §10.3; see
        pydist.dns.ecs): (query to send or None when it is too garbled to carry ECS and is
        dropped, what was added: ECS_ADDED/EDNS_ADDED or -1 for "an ECS is there, nothing to
        strip", and the client's own query for the zero-scope lookup, or None)."""
        zero = data
        data, added = query_for_backend(data, addr, dq, self.settings)
        if cache is None or not cache.parse_ecs or (server is not None
                                                    and server.options["disableZeroScope"]):
            zero = None
        return data, added or -1, zero

    def question(self, data: bytes, qname_end: int, qtype: int, qclass: int, addr: Any,
                 local: Any, fe: Any, transport: Transport, udp: bool, now: float,
                 origin: QueryOrigin | None) -> DNSQuestion:
        """The DNSQuestion rules and Lua policies read: ECS defaults, and what the frontend
        learnt beyond its socket (real destination, SNI, DoH request, proxy protocol TLVs)."""
        dq = DNSQuestion(data, qname_end, qtype, qclass, addr, fe, not udp, now, transport)
        ecs_defaults(dq, self.settings)     # what Lua reads, and what rules may change
        if local is not None:
            dq.local = local
        if origin is not None:
            dq.sni = origin.sni
            dq.http = origin.http
            if origin.proxy_values is not None:
                dq.proxy_values = list(origin.proxy_values)
        return dq

    def _before_pool(self, data: bytes, qname_end: int, qtype: int, qclass: int, addr: Any,
                     local: Any, fe: Any, transport: Transport, udp: bool, now: float,
                     origin: QueryOrigin | None) -> DNSQuestion | Verdict:
        """Dynamic blocks, then the query rules (facts §10.1): the DNSQuestion to route on, or
        the verdict when the query was dropped or answered."""
        dq = self.question(data, qname_end, qtype, qclass, addr, local, fe, transport, udp, now,
                           origin)
        memo = self.rule_memo
        if memo is not None:
            dq.matched = []
        step = RULES
        if self.dynblocks is not None:
            step = apply_dynblocks(self, self.dynblocks, dq)
            if step.__class__ is Verdict:
                return step
        if step == RULES and self.query_rules:
            try:
                verdict = apply_query_rules(self, self.query_rules, dq)
            except RuleFailed:        # dnsdist drops a query whose rules throw
                return DROP
            except Exception as e:    # a bug: said (rate-limited), the query dropped, loop alive
                self._rule_bug(e)
                return DROP
            if verdict is not None:
                return verdict
            if memo is not None:
                self._remember(memo, data, dq)
        return dq

    def _rule_bug(self, e: Exception, what: str = "Error while applying rules, query dropped"
                  ) -> None:
        """Said at most once a minute, so a broken rule cannot flood the log."""
        now = time.monotonic()
        if now - getattr(self, "_last_rule_bug", -60.0) >= 60.0:
            self._last_rule_bug = now
            self.reg.log(f"{what}: {e!r}")

    def _remember(self, memo: RuleMemo, data: bytes, dq: DNSQuestion) -> None:
        """Remember a pure chain's pass-through for these bytes, when nothing was changed."""
        for r in dq.matched:      # checked first: cheap, and false at once with a LuaAction
            if not r.action.pure:
                return
        if left_as_is(dq, data):
            if len(memo) >= self.rule_memo_max:
                forget_oldest(memo, self.rule_memo_max // RULE_MEMO_EVICT + 1)
            memo[data[2:]] = memo.note(tuple(dq.matched))

    def note_entry(self, memo: RuleMemo, entry: Any, st: Any) -> None:
        """A cached answer takes its query's remembered verdict, when the exact-bytes level
        serves it for that query's own bytes (its key is them: no capital, no skipped
        option): the verdict waits in the memo only while the query is in flight."""
        qkey = st.query[2:]
        if st.cache_key == qkey:
            note = memo.pop(qkey, None)
            if note is not None:
                entry.note = note

    def _response_rules(self, server: Any, resp: bytes, st: Any,
                        now: float) -> tuple[bytes | None, int, bool]:
        """The response chain on a backend answer as the backend sent it but with the client's
        ID (dnsdist restores RD/CD after the rules): (answer or None when dropped, UDP delay,
        skip the cache)."""
        resp = st.orig_id + resp[2:]
        try:
            qname_end, qtype, qclass = parse_question(resp)
        except WireError:
            return self._restore(resp, st), 0, False
        tags = getattr(st, "tags", None)
        delay = getattr(st, "delay_ms", 0)
        skip_query = getattr(st, "skip_cache", False)
        try:
            out, delay, skip = apply_response_rules(
                self.response_rules, resp, qname_end, qtype, qclass, st.client, st.frontend,
                st.transport not in DATAGRAM, now, tags, delay, server, skip_query,
                (getattr(st, "unique_id", None), st.sent))
        except Exception as e:        # a bug: said (rate-limited), the answer dropped
            self._rule_bug(e)
            return None, 0, True
        if out is None:
            return None, 0, True
        return self._restore(out, st), delay, skip


def memo_size(cache: Any) -> int:
    """The memo only serves hits of the default pool's cache, so it holds as many queries as
    that cache holds answers: every verdict not yet taken by a cache record is kept."""
    return max(RULE_MEMO_MIN, cache.max_entries if cache is not None else 0)


def forget_oldest(memo: dict, count: int) -> None:
    """Drop the `count` oldest-remembered queries (a dict keeps insertion order). A batch, not
    one at a time: the scan past deleted slots is paid once per batch; a hit costs nothing."""
    for key in list(islice(memo, count)):
        del memo[key]


def left_as_is(dq: DNSQuestion, data: bytes) -> bool:
    """The rules changed nothing that routes or answers the query, so what happens next
    depends on its bytes alone (what the exact-bytes cache level is keyed on)."""
    return (dq.pool is None and not dq.skip_cache and dq.tags is None and not dq.delay_ms
            and dq.temp_failure_ttl is None and dq.data == data)
