"""Rule chains (query, response, cache-hit, self-answered): one RuleChain serves them all, and
the query chain's verdicts are turned into drops, answers or a pool here."""
from __future__ import annotations

from itertools import count
from typing import Any

from pydist.dns.synth import lone_opt, opt_rr, self_answer
from pydist.rules import actions as A
from pydist.rules import selectors as S
from pydist.rules.responses import apply_response_rules
from pydist.uuids import random_uuid
from pydist.verdict import DROP, Verdict

_creation = count()


class Rule:
    """One (selector, action) pair with its name, UUID, creation order and match counter."""

    __slots__ = ("selector", "action", "name", "uuid", "order", "matches", "run")

    def __init__(self, selector: Any, action: Any, name: str = "", uuid: str | None = None) -> None:
        self.selector, self.action, self.name = selector, action, name
        self.run = action.runner() if isinstance(action, A.Action) else action   # per query
        self.uuid = uuid or random_uuid()
        self.order = next(_creation)
        self.matches = 0


def unsupported_parts(rule: Rule) -> list[str]:
    """What in a rule pydist cannot carry out yet: selectors that never match (DoH, LMDB stores,
    proxy protocol...) and actions it only keeps; the engine says so rather than ignore them."""
    out: list[str] = []

    def walk(sel: Any) -> None:
        if isinstance(sel, S.NeverRule):
            out.append(f"selector '{sel}' (it never matches in pydist)")
        for child in getattr(sel, "rules", ()) or ((sel.rule,) if hasattr(sel, "rule") else ()):
            walk(child)
    walk(rule.selector)
    act = rule.action
    while isinstance(act, A.ContinueAction):
        act = act.action
    if isinstance(act, A.ObjectAction) or not act.carried_out:
        out.append(f"action '{act}'")
    return out


def is_pure_chain(rules: tuple[Rule, ...]) -> bool:
    """Every selector depends on the query bytes only: the chain's outcome for given bytes is
    always the same, so a pass-through can be remembered (the fast cache path stays on).
    Not when a rule matches every query with an action that is not pure (AllRule() and a
    LuaAction, the usual way to run Lua on all traffic): no pass-through could ever be
    remembered, so the cache hits would only pay for looking."""
    return all(r.selector.pure for r in rules) and not any(
        r.selector.__class__ is S.AllRule and not r.action.pure for r in rules)


class ChainError(Exception):
    """rmRule/mvRule on a rule that does not exist (dnsdist prints the text and goes on)."""


class RuleChain:
    """The rules of one chain as a tuple, replaced whole on every change."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rules: tuple[Rule, ...] = ()
        self.on_change = None

    def _set(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        if self.on_change is not None:
            self.on_change()

    def add(self, rule: Rule) -> None:
        self._set(self.rules + (rule,))

    def set(self, rules: list[Rule]) -> None:
        self._set(tuple(rules))

    def clear(self) -> None:
        self._set(())

    def find(self, which: Any) -> int:
        """Index of a rule by position (int), UUID or name (str)."""
        if isinstance(which, int):
            if not 0 <= which < len(self.rules):
                raise ChainError("Error: attempt to delete non-existing rule")
            return which
        for i, r in enumerate(self.rules):
            if r.uuid == which or r.name == which:
                return i
        raise ChainError("Error: no rule matched")

    def remove(self, which: Any) -> None:
        i = self.find(which)
        self._set(self.rules[:i] + self.rules[i + 1:])

    def move(self, src: int, dst: int) -> None:
        """mvRule(from, to) as dnsdist: `to` may be the size (the end); moving down a rule
        lands it just before the rule that was at `to`."""
        rules = list(self.rules)
        if not 0 <= src < len(rules) or not 0 <= dst <= len(rules):
            raise ChainError("Error: attempt to move rules from/to invalid index")
        r = rules.pop(src)
        if dst > len(rules):
            rules.append(r)
        else:
            rules.insert(dst - 1 if src < dst else dst, r)
        self._set(tuple(rules))

    def to_top(self) -> None:
        if self.rules:
            self._set(self.rules[-1:] + self.rules[:-1])

    def show(self, show_uuids: bool = False, truncate: int = -1) -> list[str]:
        """showRules() lines (§6.2)."""
        if show_uuids:
            out = [f"{'#':<3} {'Name':<30} {'UUID':<38} {'Cr. Order':>9} {'Matches':>9} "
                   f"{'Rule':<56} Action"]
        else:
            out = [f"{'#':<3} {'Name':<30} {'Matches':>9} {'Rule':<56} Action"]
        for i, r in enumerate(self.rules):
            text = str(r.selector)
            if truncate >= 0:
                text = text[:truncate]
            if show_uuids:
                out.append(f"{i:<3d} {r.name:<30} {r.uuid:<38} {r.order:>9d} {r.matches:>9d} "
                           f"{text:<56} {r.action}")
            else:
                out.append(f"{i:<3d} {r.name:<30} {r.matches:>9d} {text:<56} {r.action}")
        return out

    def __len__(self) -> int:
        return len(self.rules)


def run_query_chain(rules: tuple[Rule, ...], dq: Any) -> tuple[int, str | None]:
    """Run the query rules in order; the verdict that stopped them, or (None action, None)."""
    matched = dq.matched
    for r in rules:
        if r.selector.matches(dq):
            r.matches += 1
            if matched is not None:
                matched.append(r)
            verdict, extra = r.run(dq)
            if verdict == A.NONE or verdict == A.NOOP or not 0 <= verdict <= A.SPOOF_RAW:
                continue      # as dnsdist: a verdict it does not know lets the chain go on
            if verdict == A.DELAY:
                dq.delay_ms = int(extra or 0)
                continue
            if verdict == A.TRUNCATE and dq.tcp:
                continue
            if verdict == A.POOL:
                dq.pool = extra
            return verdict, extra
    return A.NONE, None


def apply_query_rules(path: Any, rules: tuple[Rule, ...], dq: Any) -> Verdict | None:
    """Run the chain; None to go on to the pool, else the query's verdict (dropped, answered)."""
    settings = path.settings
    stats = path.stats
    dq.settings_add_edns = settings.add_edns_to_self_generated
    dq.payload_size = settings.payload_size_self_generated
    orig_flags = (dq.data[2], dq.data[3])
    verdict, extra = run_query_chain(rules, dq)
    if verdict == A.NONE and not dq.data[2] & 0x80:
        return None           # the usual outcome: on to the pool (the last test below)
    if verdict == A.DROP:
        stats.rule_drop += 1
        return DROP
    if verdict in (A.NXDOMAIN, A.REFUSED, A.SERVFAIL):
        rcode = {A.NXDOMAIN: 3, A.REFUSED: 5, A.SERVFAIL: 2}[verdict]
        if verdict == A.NXDOMAIN:
            stats.rule_nxdomain += 1
        elif verdict == A.REFUSED:
            stats.rule_refused += 1
        else:
            stats.rule_servfail += 1
        dq.rcode = rcode
        dq.set_flag(2, 0x80, True)
    elif verdict == A.TRUNCATE:
        stats.rule_truncated += 1
        dq.set_flag(2, 0x80, True)
        dq.set_flag(2, 0x02, True)
        dq.set_flag(3, 0x80, dq.rd)
        dq.set_flag(2, 0x04, False)
        dq.set_flag(3, 0x20, False)
    elif verdict == A.NORECURSE:
        dq.set_flag(2, 0x01, False)
    elif verdict in (A.SPOOF, A.SPOOF_RAW) and extra is not None:
        spoof_from_string(dq, extra, verdict == A.SPOOF_RAW)
    if not dq.qr:
        return None
    return self_answered(path, dq, orig_flags)


def self_answered(path: Any, dq: Any, orig_flags: tuple[int, int]) -> Verdict:
    """A query turned into an answer: built, the client's RD and CD bits put back, the
    self-answered chain run (it may drop it), counted; sent by the frontend (delayed over UDP
    if asked)."""
    if dq.spoof:
        resp = bytearray(dq.data)
    else:
        resp = bytearray(self_answer(bytes(dq.data), dq.qname_end, dq.rcode,
                                     dq.settings_add_edns, dq.payload_size))
        if dq.ercode and lone_opt(resp, dq.qname_end):      # not on an echoed query
            off = dq.qname_end + 4
            resp[off:off + 11] = opt_rr(dq.payload_size, dq.edns_do(), dq.ercode)
    resp[2] = (resp[2] & 0xFE) | (orig_flags[0] & 0x01)
    resp[3] = (resp[3] & 0xEF) | (orig_flags[1] & 0x10)
    out: bytes | None = bytes(resp)
    delay = 0 if dq.tcp else dq.delay_ms
    rules = path.selfanswered_rules
    if rules:
        out, delay, _ = apply_response_rules(rules, out, dq.qname_end, dq.qtype, dq.qclass,
                                          dq.remote, dq.frontend, dq.tcp, dq.now, dq.tags, delay,
                                          query=(dq.unique_id, dq.now))
        if out is None:
            return DROP
    path.stats.self_answered += 1
    # dnsdist 1.7.3 counts a rule's answer in the frontend's responses over UDP, TCP and DoT
    # alike (it is cache hits it never counts: see packet_path); checked on the binary
    return path.local_answer(out, dq.remote, dq.frontend, dq.transport, delay_ms=delay)


def apply_dynblocks(path: Any, blocks: Any, dq: Any) -> int | Verdict:
    """Dynamic blocks, netmasks then suffixes (facts §11): RULES to go on to the query rules,
    FORWARD to skip them (a NoRecurse block), else the verdict (the query dropped or answered)."""
    now = dq.now
    addr = dq.remote
    hit = blocks.lookup_address(addr[0], now, addr[1])
    if hit is None and blocks.names:
        hit = blocks.lookup_name(dq.qname.key, now)
    if hit is None:
        return RULES
    action = blocks.action_of(hit)
    if action == A.NOOP or action == A.NONE or (action == A.TRUNCATE and dq.tcp):
        return RULES
    hit.blocks += 1
    path.stats.dyn_blocked += 1
    if action == A.NORECURSE:
        dq.set_flag(2, 0x01, False)
        return FORWARD
    orig_flags = (dq.data[2], dq.data[3])
    if action in (A.NXDOMAIN, A.REFUSED):
        dq.rcode = 3 if action == A.NXDOMAIN else 5
        dq.set_flag(2, 0x80, True)
    elif action == A.TRUNCATE:
        dq.set_flag(2, 0x80 | 0x02, True)
        dq.set_flag(3, 0x80, dq.rd)
        dq.set_flag(2, 0x04, False)
        dq.set_flag(3, 0x20, False)
    else:
        return DROP
    dq.settings_add_edns = path.settings.add_edns_to_self_generated
    dq.payload_size = path.settings.payload_size_self_generated
    return self_answered(path, dq, orig_flags)


RULES, FORWARD = 0, 1


def spoof_from_string(dq: Any, text: str, raw: bool) -> None:
    """A Lua action's Spoof/SpoofRaw verdict string, read as dnsdist 1.7.3 does: raw records
    separated by commas; otherwise one address, or one CNAME target, or several addresses
    separated by commas or spaces (words that are not addresses are skipped)."""
    import ipaddress
    from pydist.rules.names import DNSName
    if raw:
        act: Any = A.SpoofRawAction([r.encode("latin-1") for r in text.split(",") if r])
        act(dq)
        return
    words = [w for w in text.replace(",", " ").split(" ") if w]
    good = []
    for w in words:
        try:
            ipaddress.ip_address(w)
            good.append(w)
        except ValueError:
            pass
    if len(words) == 1 and not good:
        act = A.SpoofAction(cname=DNSName.from_text(text))
    else:
        act = A.SpoofAction(good)
    act(dq)
