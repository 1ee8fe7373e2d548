"""Reading queries straight from their bytes: header fields, the question, EDNS."""
from __future__ import annotations

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


class WireError(ValueError):
    """A packet too malformed to take the packet path."""


def question_end(pkt: bytes) -> int:
    """Offset just past the first question's qname (no compression allowed there)."""
    off = 12
    n = len(pkt)
    while True:
        if off >= n:
            raise WireError("qname runs past the end")
        ll = pkt[off]
        if ll == 0:
            return off + 1
        if ll > 63:
            raise WireError("bad label length")
        off += ll + 1
        if off > 12 + 255:
            raise WireError("qname too long")


def parse_question(pkt: bytes) -> tuple[int, int, int]:
    """(qname_end, qtype, qclass) of the first question; raises WireError.

    Runs for every query that misses the exact-bytes cache level: question_end's loop is
    repeated here rather than called.
    """
    off = 12
    n = len(pkt)
    while True:
        if off >= n:
            raise WireError("qname runs past the end")
        ll = pkt[off]
        if ll == 0:
            break
        if ll > 63:
            raise WireError("bad label length")
        off += ll + 1
        if off > 12 + 255:
            raise WireError("qname too long")
    end = off + 1
    if end + 4 > n:
        raise WireError("question truncated")
    return end, (pkt[end] << 8) | pkt[end + 1], (pkt[end + 2] << 8) | pkt[end + 3]


def name_to_text(pkt: bytes, start: int = 12, end: int | None = None) -> str:
    """Presentation form with a trailing dot, escaping as DNSName::toString does."""
    labels = []
    off = start
    while True:
        ll = pkt[off]
        if ll == 0:
            break
        raw = pkt[off + 1: off + 1 + ll]
        labels.append(escape_label(raw))
        off += ll + 1
    return ".".join(labels) + "." if labels else "."


def escape_label(raw: bytes) -> str:
    out = []
    for b in raw:
        if b in (0x2E, 0x5C):
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    return "".join(out)


def text_to_wire(name: str) -> bytes:
    """Wire form of a presentation name (dots, \\. and \\DDD escapes)."""
    if name in ("", "."):
        return b"\x00"
    labels: list[bytes] = []
    cur = bytearray()
    i = 0
    while i < len(name):
        c = name[i]
        if c == "\\" and i + 1 < len(name):
            if name[i + 1: i + 4].isdigit() and len(name[i + 1: i + 4]) == 3:
                cur.append(int(name[i + 1: i + 4]))
                i += 4
                continue
            cur.extend(name[i + 1].encode("latin-1", "replace"))
            i += 2
            continue
        if c == ".":
            if not cur:
                raise WireError(f"empty label in '{name}'")
            labels.append(bytes(cur))
            cur = bytearray()
        else:
            cur.extend(c.encode("latin-1", "replace"))  # Lua strings reach us as latin-1
        i += 1
    if cur:
        labels.append(bytes(cur))
    out = bytearray()
    for lab in labels:
        if len(lab) > 63:
            raise WireError("label too long")
        out.append(len(lab))
        out += lab
    out.append(0)
    if len(out) > 255:
        raise WireError("name too long")
    return bytes(out)


def qtype_to_text(qtype: int) -> str:
    return QTYPE_NAMES.get(qtype, f"TYPE{qtype}")


def qtype_from_text(text: str) -> int:
    t = text.upper()
    if t in QTYPE_NUMBERS:
        return QTYPE_NUMBERS[t]
    if t.startswith("TYPE") and t[4:].isdigit():
        return int(t[4:])
    raise WireError(f"Unknown type '{text}'")


def find_opt(pkt: bytes, qname_end: int) -> int:
    """Offset of the OPT RR in a plain query (QD=1, AN=NS=0, AR>=1), or -1."""
    if len(pkt) < qname_end + 4 + 11 or pkt[4:6] != b"\x00\x01" or pkt[6:10] != b"\x00\x00\x00\x00":
        return -1
    off = qname_end + 4
    if pkt[off] == 0 and pkt[off + 1] == 0 and pkt[off + 2] == 41:
        return off
    return -1


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
