"""Reading queries straight from their bytes: header fields, the question, EDNS, QType names.
The walks themselves are pydist.dns.reader's (the one wire reader); the names here are the
ones the packet path has always called."""
from __future__ import annotations

from pydist.dns.reader import (  # noqa: F401 -- escape_label, text_to_wire, WireError re-exported
    WireError,
    escape_label,
    name_text,
    opt_after_question,
    qname_end,
    question,
    text_to_wire,
)

QR = 0x8000
OPCODE_MASK = 0x7800
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010

# dnsdist 1.7.3's own table (QType names, read off its showRules() for every code): both
# directions, so QTypeRule("NULL") is refused and type 10 prints TYPE10, as there.
QTYPE_NAMES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR", 12: "PTR", 13: "HINFO",
    14: "MINFO", 15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA",
    29: "LOC", 33: "SRV", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME", 41: "OPT",
    42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
    49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 57: "RKEY", 59: "CDS",
    60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 64: "SVCB", 65: "HTTPS", 99: "SPF", 104: "NID",
    105: "L32", 106: "L64", 107: "LP", 108: "EUI48", 109: "EUI64", 249: "TKEY", 251: "IXFR",
    252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA", 32769: "DLV",
    65400: "ADDR", 65401: "ALIAS", 65402: "LUA",
}
QTYPE_NUMBERS = {v: k for k, v in QTYPE_NAMES.items()}


# the names the engine has always called, bound straight to the reader's functions (no frame
# more on the packet path)
question_end = qname_end            # just past the first question's qname (no compression)
parse_question = question           # (qname_end, qtype, qclass); raises WireError
name_to_text = name_text            # presentation form, escaped as DNSName::toString
find_opt = opt_after_question       # offset of a plain query's OPT RR, or -1


def qtype_to_text(qtype: int) -> str:
    return QTYPE_NAMES.get(qtype, f"TYPE{qtype}")


def qtype_from_text(text: str) -> int:
    t = text.upper()
    if t in QTYPE_NUMBERS:
        return QTYPE_NUMBERS[t]
    if t.startswith("TYPE") and t[4:].isdigit():
        return int(t[4:])
    raise WireError(f"Unknown type '{text}'")


def edns_info(pkt: bytes, qname_end: int) -> tuple[int, bool] | None:
    """(udp payload size, DO bit) of the query's OPT RR, or None without EDNS."""
    off = find_opt(pkt, qname_end)
    if off < 0:
        return None
    size = (pkt[off + 3] << 8) | pkt[off + 4]
    do = bool(pkt[off + 7] & 0x80)
    return size, do


def build_header_only(query: bytes, rcode: int, qname_end: int | None = None) -> bytes:
    """A response echoing the query's header (and question when given) with QR and rcode set."""
    flags = ((query[2] << 8) | query[3]) | QR
    flags = (flags & ~0x000F) | (rcode & 0xF)
    if qname_end is None:
        return query[:2] + flags.to_bytes(2, "big") + b"\x00" * 8
    return query[:2] + flags.to_bytes(2, "big") + b"\x00\x01" + b"\x00" * 6 + query[12:qname_end + 4]
