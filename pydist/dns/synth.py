"""Answers pydist makes itself (no-server SERVFAIL, NOTIMP, truncation), built from the query bytes."""
from __future__ import annotations

from pydist.dns.reader import WireError, opt_record
from pydist.dns.wire import QR, TC, edns_info, find_opt


def opt_rr(payload: int, do: bool, ext_rcode: int = 0) -> bytes:
    """A fresh OPT RR as dnsdist adds to self-generated answers."""
    return (b"\x00\x00\x29" + payload.to_bytes(2, "big") + bytes([ext_rcode, 0])
            + (b"\x80\x00" if do else b"\x00\x00") + b"\x00\x00")


def self_answer(query: bytes, qname_end: int, rcode: int, add_edns: bool, payload: int,
                extra_flags: int = 0) -> bytes:
    """Header + question with QR and rcode set, the query's other flags kept, EDNS re-added.
    As dnsdist 1.7.3 (its EDNS handling of a query turned into an answer only knows a query
    whose one extra record is an OPT), a query carrying other records is echoed whole."""
    flags = (((query[2] << 8) | query[3]) | QR | extra_flags) & ~0x000F | (rcode & 0xF)
    if query[6:12] != b"\x00\x00\x00\x00\x00\x00" and not lone_opt(query, qname_end):
        return query[:2] + flags.to_bytes(2, "big") + query[4:]
    edns = edns_info(query, qname_end)
    arcount = 1 if (edns is not None and add_edns) else 0
    out = (query[:2] + flags.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x00"
           + arcount.to_bytes(2, "big") + query[12:qname_end + 4])
    if arcount:
        out += opt_rr(payload, edns[1])
    return out


def lone_opt(query: bytes, qname_end: int) -> bool:
    """True when the query's only record past the question is its OPT."""
    return query[10:12] == b"\x00\x01" and find_opt(query, qname_end) >= 0


def notimp_for_empty(query: bytes) -> bytes:
    """A header-only NOTIMP answer to a query with QDCOUNT=0."""
    flags = (((query[2] << 8) | query[3]) | QR) & ~0x000F | 4
    return query[:2] + flags.to_bytes(2, "big") + b"\x00" * 8


def truncate_for_udp(response: bytes, qname_end: int) -> bytes:
    """Header + question with TC=1, for an answer too large for the client's UDP size."""
    flags = ((response[2] << 8) | response[3]) | TC
    qd = response[4:6]
    return (response[:2] + flags.to_bytes(2, "big") + qd + b"\x00" * 6
            + response[12:qname_end + 4])


def truncate_tc(response: bytes, qname_end: int, add_edns: bool) -> bytes:
    """truncateTC(true) on a TC=1 backend answer, as dnsdist 1.7.3: header + question, the
    answer's flags and rcode kept, and its OPT re-added bare (same UDP size and DO) when
    setAddEDNSToSelfGeneratedResponses is on."""
    opt = None
    if add_edns:
        try:
            opt = opt_record(response)
        except WireError:
            pass
    head = response[:6] + b"\x00\x00\x00\x00" + (b"\x00\x01" if opt is not None else b"\x00\x00")
    out = head + response[12:qname_end + 4]
    if opt is None:
        return out
    # the OPT's class is the UDP size, its TTL the ext-rcode, version and flags (DO)
    return out + opt_rr(opt.rclass, bool(opt.ttl & 0x8000))
