"""A trace in words, and the check of a case's expectations against it."""
from __future__ import annotations

import dnslib

from pydist.testbench.bench import Trace

RCODE_NAMES = {name: code for code, name in dnslib.RCODE.forward.items()}
OUTCOMES = ("drop", "answer", "forward", "cache-hit", "no-server", "truncated", "error")


def describe(trace: Trace) -> list[str]:
    """The lines printed for one case."""
    case = trace.case
    lines = [f"{case.label}: {case.qname} {case.qtype} from {case.client} over {case.transport}"]
    if not trace.rules:
        lines.append("  query rules: none matched")
    for pos, rule in trace.rules:
        lines.append(f"  query rule {pos}: name '{rule.name}' uuid {rule.uuid}")
        lines.append(f"    {rule.selector}  ->  {rule.action}")
    for kind, pos, rule in trace.response_rules:
        lines.append(f"  {kind} rule {pos}: name '{rule.name}' uuid {rule.uuid}")
        lines.append(f"    {rule.selector}  ->  {rule.action}")
    if trace.pool is not None:
        server = trace.server.name_with_addr() if trace.server is not None else "none"
        lines.append(f"  pool '{trace.pool}', server {server}")
    lines.append(f"  outcome: {outcome_text(trace)}")
    return lines


def outcome_text(trace: Trace) -> str:
    text = trace.outcome
    if trace.answer is not None:
        text += f", {answer_summary(trace.answer)}"
    if trace.delay_ms:
        text += f", delayed {trace.delay_ms} ms"
    if trace.error:
        text += f" ({trace.error})"
    return text


def answer_summary(answer: bytes) -> str:
    """rcode, flags and the records, one short phrase."""
    try:
        msg = dnslib.DNSRecord.parse(answer)
    except Exception:  # noqa: BLE001 -- say what we can of bytes dnslib cannot read
        return f"{len(answer)} bytes, rcode {answer[3] & 0x0F if len(answer) > 3 else '?'}"
    rcode = dnslib.RCODE.get(msg.header.rcode)
    flags = " TC" if msg.header.tc else ""
    records = "; ".join(f"{rr.rname} {rr.ttl} {dnslib.QTYPE.get(rr.rtype)} {rr.rdata}"
                        for rr in msg.rr)
    return f"{rcode}{flags}" + (f": {records}" if records else "")


def failures(trace: Trace) -> list[str]:
    """Each expectation of the case that the trace does not meet, in words."""
    out = []
    for key, want in trace.case.expect.items():
        got = _actual(trace, key, want)
        if got is not None:
            out.append(f"expected {key}={want}, got {got}")
    return out


def _actual(trace: Trace, key: str, want: str) -> str | None:
    """None when met, else what was seen instead."""
    if key == "expect":
        return _check_outcome(trace, want)
    if key == "pool":
        return None if trace.pool == want else repr(trace.pool)
    if key == "server":
        s = trace.server
        names = () if s is None else (s.name, s.address_str, s.host)
        return None if want in names else (s.name_with_addr() if s is not None else "none")
    decided = trace.deciding_rule
    if want.lower() == "none":
        return None if decided is None else str(decided[0])
    if decided is None:
        return "none"
    pos, rule = decided
    return None if want in (str(pos), rule.name, rule.uuid) else f"{pos} ('{rule.name}')"


def _check_outcome(trace: Trace, want: str) -> str | None:
    w = want.lower()
    if w == "truncated":
        return None if trace.truncated else trace.outcome
    if w in OUTCOMES:
        return None if trace.outcome == w else trace.outcome
    code = RCODE_NAMES.get(want.upper())
    if code is None:
        return f"an unknown outcome '{want}' (one of {', '.join(OUTCOMES)} or an rcode name)"
    if trace.rcode is None:
        return trace.outcome
    return None if trace.rcode == code else dnslib.RCODE.get(trace.rcode)
