"""Comparing two answers to the same query the way DNS allows: sets, not orders; TTLs within a tolerance."""
from __future__ import annotations

from dataclasses import dataclass

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

FLAG_NAMES = ("QR", "AA", "TC", "RD", "RA", "AD", "CD")


@dataclass(frozen=True)
class Difference:
    """One kind of disagreement and a readable account of it."""

    kind: str
    detail: str


def _flags(msg: dns.message.Message) -> set[str]:
    return {name for name in FLAG_NAMES if msg.flags & getattr(dns.flags, name)}


def _rrsets(section: list) -> dict[tuple[str, str, str], tuple[int, tuple[str, ...]]]:
    """(owner, class, type) -> (ttl, sorted rdata texts): the order-free view of a section."""
    out: dict[tuple[str, str, str], tuple[int, tuple[str, ...]]] = {}
    for rrset in section:
        key = (rrset.name.to_text().lower(), dns.rdataclass.to_text(rrset.rdclass),
               dns.rdatatype.to_text(rrset.rdtype))
        rdatas = sorted(r.to_text() for r in rrset)
        if key in out:
            ttl, old = out[key]
            out[key] = (min(ttl, rrset.ttl), tuple(sorted(old + tuple(rdatas))))
        else:
            out[key] = (rrset.ttl, tuple(rdatas))
    return out


def _edns(msg: dns.message.Message) -> dict[str, object] | None:
    if msg.edns < 0:
        return None
    options = sorted((opt.otype, opt.to_wire().hex()) for opt in msg.options)
    return {"version": msg.edns, "payload": msg.payload, "do": bool(msg.ednsflags & dns.flags.DO),
            "options": options}


def compare_sections(name: str, a: list, b: list, ttl_tolerance: int) -> list[Difference]:
    """RRset differences of one section, order-insensitive, TTLs within ttl_tolerance seconds."""
    sa, sb = _rrsets(a), _rrsets(b)
    diffs: list[Difference] = []
    for key in sorted(set(sa) | set(sb)):
        label = " ".join(key)
        if key not in sb:
            diffs.append(Difference(name, f"{label} only on side A: {list(sa[key][1])}"))
        elif key not in sa:
            diffs.append(Difference(name, f"{label} only on side B: {list(sb[key][1])}"))
        else:
            (ttl_a, data_a), (ttl_b, data_b) = sa[key], sb[key]
            if data_a != data_b:
                diffs.append(Difference(name, f"{label}: A has {list(data_a)}, B has {list(data_b)}"))
            if abs(ttl_a - ttl_b) > ttl_tolerance:
                diffs.append(Difference("ttl", f"{name} {label}: TTL {ttl_a} vs {ttl_b}"))
    return diffs


def compare_answers(query: bytes, a: bytes | None, b: bytes | None, ttl_tolerance: int = 1) -> list[Difference]:
    """Every difference between side A's and side B's answer to `query` (None = dropped)."""
    if a is None and b is None:
        return []
    if a is None or b is None:
        return [Difference("answered-vs-dropped",
                           f"side {'B' if a is None else 'A'} answered, side {'A' if a is None else 'B'} dropped")]
    try:
        ma = dns.message.from_wire(a, ignore_trailing=True)
    except Exception as exc:
        ma, err_a = None, str(exc)
    try:
        mb = dns.message.from_wire(b, ignore_trailing=True)
    except Exception as exc:
        mb, err_b = None, str(exc)
    if ma is None or mb is None:
        if ma is None and mb is None:
            return [] if a[2:] == b[2:] else [Difference("malformed", f"both unparsable and unequal: {err_a} / {err_b}")]
        return [Difference("malformed", f"side {'A' if ma is None else 'B'} unparsable: "
                                        f"{err_a if ma is None else err_b}")]
    diffs: list[Difference] = []
    qid = query[:2]
    if (a[:2] == qid) != (b[:2] == qid):
        diffs.append(Difference("id", "the answer ID does not match the query ID on one side"))
    if ma.rcode() != mb.rcode():
        diffs.append(Difference("rcode", f"{dns.rcode.to_text(ma.rcode())} vs {dns.rcode.to_text(mb.rcode())}"))
    if ma.opcode() != mb.opcode():
        diffs.append(Difference("flags", f"opcode {dns.opcode.to_text(ma.opcode())} vs {dns.opcode.to_text(mb.opcode())}"))
    fa, fb = _flags(ma), _flags(mb)
    if fa != fb:
        diffs.append(Difference("flags", f"{' '.join(sorted(fa))} vs {' '.join(sorted(fb))}"))
    qa = [(q.name.to_text(), q.rdtype, q.rdclass) for q in ma.question]
    qb = [(q.name.to_text(), q.rdtype, q.rdclass) for q in mb.question]
    if qa != qb:
        diffs.append(Difference("question", f"{qa} vs {qb}"))
    diffs += compare_sections("answer", ma.answer, mb.answer, ttl_tolerance)
    diffs += compare_sections("authority", ma.authority, mb.authority, ttl_tolerance)
    diffs += compare_sections("additional", ma.additional, mb.additional, ttl_tolerance)
    ea, eb = _edns(ma), _edns(mb)
    if ea != eb:
        diffs.append(Difference("edns", f"{ea} vs {eb}"))
    return diffs


def compare_lines(kind: str, a: list[str], b: list[str], limit: int = 5) -> list[Difference]:
    """Line-set difference of two texts (log lines, console output), first few lines of each side."""
    only_a = [line for line in a if line not in b]
    only_b = [line for line in b if line not in a]
    if not only_a and not only_b:
        return []
    parts = []
    if only_a:
        parts.append("only on side A: " + " | ".join(only_a[:limit]))
    if only_b:
        parts.append("only on side B: " + " | ".join(only_b[:limit]))
    return [Difference(kind, "; ".join(parts))]
