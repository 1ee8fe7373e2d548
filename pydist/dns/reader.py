"""The one DNS wire reader: every walk over names, records and EDNS options goes through here.

Every function is bounds-checked and raises `WireError` (one error type) on data it cannot
walk: a label or record running past the end, an option running past its OPT record; and,
where a name is read as dnsdist's DNSName reads it (questions, `name_labels`), a label length
of the reserved 0x40/0x80 kinds, a name longer than 255 bytes, a compression pointer that does
not point backwards. Names are skipped in place (`name_end`) as pdns's DNSPacketMangler skips
them, which is how dnsdist walks records to age TTLs, find the OPT and measure a packet. The one exception is `ttl_walk`, which, like pdns's
DNSPacketMangler that dnsdist ages cached answers with, walks a damaged answer as far as it
goes and reports what it saw.

Functions rather than a cursor object: the question parse and the TTL walk run for every
query and cache insert, where an object per packet costs more than the walk itself.
"""
from __future__ import annotations

import struct
from typing import Iterator, NamedTuple

MAX_NAME = 255            # wire length of a name, root byte included (RFC 1035 3.1)
MAX_LABEL = 63
MAX_JUMPS = 100           # compression pointers followed in one name, as dnsdist's DNSName
TYPE_OPT = 41
TYPE_SOA = 6
CLASS_IN = 1
NO_TTL = 0xFFFFFFFF       # getDNSPacketMinTTL's "no record seen" (UINT32_MAX)

_PLAIN = bytes(b for b in range(0x21, 0x7F) if b not in (0x2E, 0x5C))   # printed as they are
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_COUNTS = struct.Struct("!4H")
_RR_HEAD = struct.Struct("!HHIH")   # type, class, TTL, rdlength


class WireError(ValueError):
    """Wire data too malformed to walk: the one error every reader function raises."""


class NameTextError(WireError):
    """A presentation-form name dnsdist's DNSName would refuse, with dnsdist's words."""


# ---------------------------------------------------------------- names

def qname_end(pkt: bytes | bytearray, start: int = 12) -> int:
    """Offset just past the uncompressed name at `start` (a question's qname: no pointer)."""
    off = start
    n = len(pkt)
    limit = start + MAX_NAME
    while True:
        if off >= n:
            raise WireError("qname runs past the end")
        ll = pkt[off]
        if ll == 0:
            return off + 1
        if ll > MAX_LABEL:
            raise WireError("bad label length")
        off += ll + 1
        if off >= limit:
            raise WireError("qname too long")


def question(pkt: bytes | bytearray) -> tuple[int, int, int]:
    """(qname_end, qtype, qclass) of the first question.

    Runs for every query that misses the exact-bytes cache level: qname_end's loop is written
    out here rather than called (a property test checks both agree).
    """
    off = 12
    n = len(pkt)
    while True:
        if off >= n:
            raise WireError("qname runs past the end")
        ll = pkt[off]
        if ll == 0:
            break
        if ll > MAX_LABEL:
            raise WireError("bad label length")
        off += ll + 1
        if off >= 12 + MAX_NAME:
            raise WireError("qname too long")
    end = off + 1
    if end + 4 > n:
        raise WireError("question truncated")
    return end, (pkt[end] << 8) | pkt[end + 1], (pkt[end + 2] << 8) | pkt[end + 3]


def name_end(pkt: bytes | bytearray, pos: int) -> int:
    """Offset just past the name at `pos` in place, skipped as pdns's DNSPacketMangler skips
    it (dnsdist's TTL ageing, packet length and OPT search): a byte >= 0xC0 is a compression
    pointer that ends the name (not followed), any other byte a label length."""
    end = len(pkt)
    while True:
        if pos >= end:
            raise WireError("name runs past the end")
        length = pkt[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            if pos + 2 > end:
                raise WireError("compression pointer runs past the end")
            return pos + 2
        pos += length + 1


def name_labels(pkt: bytes | bytearray, pos: int) -> tuple[tuple[bytes, ...], int]:
    """The labels of the name at `pos`, compression pointers followed, and the offset just
    past the name in place, as dnsdist's DNSName decompresses it: a pointer must point before
    the name (part) it continues (no forward reference, no loop), at most MAX_JUMPS of them."""
    labels: list[bytes] = []
    end = len(pkt)
    after = -1
    total = 1
    jumps = 0
    floor = pos
    while True:
        if pos >= end:
            raise WireError("name runs past the end")
        length = pkt[pos]
        if length == 0:
            return tuple(labels), (pos + 1 if after < 0 else after)
        if length >= 0xC0:
            if pos + 2 > end:
                raise WireError("compression pointer runs past the end")
            target = ((length & 0x3F) << 8) | pkt[pos + 1]
            if after < 0:
                after = pos + 2
            jumps += 1
            if target >= floor or jumps > MAX_JUMPS:
                raise WireError("compression pointer does not point backwards")
            pos = floor = target
            continue
        if length > MAX_LABEL:
            raise WireError("bad label type")
        if pos + 1 + length > end:
            raise WireError("label runs past the end")
        total += length + 1
        if total > MAX_NAME:
            raise WireError("name too long")
        labels.append(bytes(pkt[pos + 1:pos + 1 + length]))
        pos += length + 1


def qname_labels(pkt: bytes | bytearray, start: int = 12) -> tuple[bytes, ...]:
    """The labels of the uncompressed name at `start` (a question's qname)."""
    out = []
    off = start
    end = qname_end(pkt, start)
    while off < end - 1:
        ll = pkt[off]
        out.append(bytes(pkt[off + 1:off + 1 + ll]))
        off += ll + 1
    return tuple(out)


def escape_label(raw: bytes) -> str:
    """One label as DNSName::toString prints it: '.' and '\\' escaped, other bytes outside
    0x21-0x7E as \\DDD."""
    if not raw.translate(None, _PLAIN):        # the usual label: nothing to escape
        return raw.decode("ascii")
    out = []
    for b in raw:
        if b == 0x2E or b == 0x5C:
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    return "".join(out)


def labels_text(labels: tuple[bytes, ...] | list[bytes]) -> str:
    """Presentation form with the trailing dot ('.' for the root)."""
    if not labels:
        return "."
    return ".".join(escape_label(x) for x in labels) + "."


def name_text(pkt: bytes | bytearray, pos: int = 12) -> str:
    """Presentation form of the name at `pos` (compression pointers followed)."""
    return labels_text(name_labels(pkt, pos)[0])


def parse_name(text: str) -> tuple[bytes, ...]:
    """Presentation text to labels ('.' and '' are the root), escapes (\\. and \\DDD) read as
    DNSName reads them; NameTextError with dnsdist's words on a name it refuses. Lua strings
    reach us as latin-1, one byte a character."""
    if text in ("", "."):
        return ()
    labels: list[bytes] = []
    cur = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            digits = text[i + 1:i + 4]
            if len(digits) == 3 and digits.isdigit():
                cur.append(int(digits) & 0xFF)
                i += 4
                continue
            cur += text[i + 1].encode("latin-1", "replace")
            i += 2
            continue
        if c == ".":
            if not cur:
                raise NameTextError(f"Found . in wrong position in DNSName {text}")
            labels.append(bytes(cur))
            cur = bytearray()
        else:
            cur += c.encode("latin-1", "replace")
        i += 1
    if cur:
        labels.append(bytes(cur))
    if any(len(x) > MAX_LABEL for x in labels):
        raise NameTextError("label too long to append")
    if sum(len(x) + 1 for x in labels) + 1 > MAX_NAME:
        raise NameTextError("name too long to append")
    return tuple(labels)


def labels_wire(labels: tuple[bytes, ...] | list[bytes]) -> bytes:
    """Uncompressed wire form of labels."""
    return b"".join(bytes((len(x),)) + x for x in labels) + b"\x00"


def text_to_wire(text: str) -> bytes:
    """Uncompressed wire form of a presentation name (NameTextError if refused)."""
    return labels_wire(parse_name(text))


# ---------------------------------------------------------------- records

class Record(NamedTuple):
    """One resource record's header as found: where its name starts, its fields, where its
    rdata starts, and its index among all records after the question."""
    start: int
    rtype: int
    rclass: int
    ttl: int
    rdlen: int
    rdata: int
    index: int


def counts(pkt: bytes | bytearray) -> tuple[int, int, int, int]:
    """QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT."""
    if len(pkt) < 12:
        raise WireError("shorter than a header")
    return _COUNTS.unpack_from(pkt, 4)


def skip_questions(pkt: bytes | bytearray, qdcount: int) -> int:
    """Offset just past `qdcount` questions."""
    pos = 12
    end = len(pkt)
    for _ in range(qdcount):
        pos = name_end(pkt, pos)
        if pos + 4 > end:
            raise WireError("question runs past the end")
        pos += 4
    return pos


def records(pkt: bytes | bytearray) -> Iterator[Record]:
    """Every record after the questions, in order (answer, authority, additional); raises
    WireError at the first one that runs past the end."""
    qd, an, ns, ar = counts(pkt)
    pos = skip_questions(pkt, qd)
    end = len(pkt)
    head = _RR_HEAD.unpack_from
    for index in range(an + ns + ar):
        start = pos
        pos = name_end(pkt, pos)
        if pos + 10 > end:
            raise WireError("record header runs past the end")
        rtype, rclass, ttl, rdlen = head(pkt, pos)
        rdata = pos + 10
        pos = rdata + rdlen
        if pos > end:
            raise WireError("rdata runs past the end")
        yield Record(start, rtype, rclass, ttl, rdlen, rdata, index)


def check_names(pkt: bytes | bytearray) -> None:
    """Walk every question and record with its names decompressed, as dnsdist's PacketReader
    reads an answer it takes EDNS/ECS out of: WireError where that reader throws."""
    qd, an, ns, ar = counts(pkt)
    end = len(pkt)
    pos = 12
    for _ in range(qd):
        pos = name_labels(pkt, pos)[1]
        if pos + 4 > end:
            raise WireError("question runs past the end")
        pos += 4
    for _ in range(an + ns + ar):
        pos = name_labels(pkt, pos)[1]
        if pos + 10 > end:
            raise WireError("record header runs past the end")
        pos += 10 + _U16.unpack_from(pkt, pos + 8)[0]
        if pos > end:
            raise WireError("rdata runs past the end")


def records_end(pkt: bytes | bytearray) -> int:
    """Offset just past the last record the header counts (what follows is trailing data, as
    dnsdist's getDNSPacketLength sees it)."""
    qd, an, ns, ar = counts(pkt)
    pos = skip_questions(pkt, qd)
    end = len(pkt)
    rdlen_at = _U16.unpack_from
    for _ in range(an + ns + ar):
        pos = name_end(pkt, pos)
        if pos + 10 > end:
            raise WireError("record header runs past the end")
        pos += 10 + rdlen_at(pkt, pos + 8)[0]
        if pos > end:
            raise WireError("rdata runs past the end")
    return pos


def message_end(pkt: bytes | bytearray) -> int:
    """Where the message ends and trailing data starts: the whole packet when it cannot be
    walked, as getDNSPacketLength answers."""
    try:
        return records_end(pkt)
    except WireError:
        return len(pkt)


def opt_record(pkt: bytes | bytearray) -> Record | None:
    """The first OPT record of the additional section, None when there is none; WireError
    when the records before it cannot be walked."""
    _, an, ns, _ = counts(pkt)
    first_additional = an + ns
    for rr in records(pkt):
        if rr.rtype == TYPE_OPT and rr.index >= first_additional:
            return rr
    return None


def locate_opt(pkt: bytes | bytearray) -> tuple[int, int]:
    """(start, end) of the first OPT record of the additional section, or (-1, -1) when there
    is none or the packet cannot be walked to it."""
    try:
        rr = opt_record(pkt)
    except WireError:
        return -1, -1
    return (-1, -1) if rr is None else (rr.start, rr.rdata + rr.rdlen)


def opt_after_question(pkt: bytes | bytearray, qname_end_: int) -> int:
    """Offset of the OPT record of a plain query (QD=1, AN=NS=0, AR>=1, the OPT first in the
    additional section, root name), or -1: what dnsdist reads a query's EDNS from."""
    if (len(pkt) < qname_end_ + 4 + 11 or pkt[4:6] != b"\x00\x01"
            or pkt[6:10] != b"\x00\x00\x00\x00" or pkt[10:12] == b"\x00\x00"):
        return -1
    off = qname_end_ + 4
    if pkt[off] == 0 and pkt[off + 1] == 0 and pkt[off + 2] == TYPE_OPT:
        return off
    return -1


def options(pkt: bytes | bytearray, rdata: int, end: int,
            strict: bool = True) -> list[tuple[int, int, int]]:
    """(code, start, end) of each EDNS option in the OPT rdata `rdata`..`end` (start is the
    option's code, end just past its data); WireError when an option runs past `end`, or with
    `strict=False` the options before it (what dnsdist's getEDNSOptions leaves in its map)."""
    if end > len(pkt):
        if strict:
            raise WireError("OPT rdata runs past the end")
        end = len(pkt)
    out = []
    pos = rdata
    while pos < end:
        nxt = pos + 4 + ((pkt[pos + 2] << 8) | pkt[pos + 3]) if pos + 4 <= end else end + 1
        if nxt > end:
            if not strict:
                break
            raise WireError("option runs past the OPT record")
        code = (pkt[pos] << 8) | pkt[pos + 1]
        out.append((code, pos, nxt))
        pos = nxt
    return out


# ---------------------------------------------------------------- TTLs

def ttl_walk(resp: bytes | bytearray, questions_end: int = 0
             ) -> tuple[list[int], int, bool]:
    """TTL offsets, minimum TTL (NO_TTL if none) and 'IN SOA seen in authority', walking every
    record after the questions up to the first OPT, as far as a damaged answer goes.
    `questions_end`: where the questions end, when the caller has already read them (an
    answer checked against the one question of its query), else 0.

    Hot at every cache insert: a whole RR header is read with one unpack when it fits and a
    name that is a lone compression pointer is skipped inline; the tail of a truncated packet
    goes through the careful field-by-field steps.
    """
    offsets: list[int] = []
    min_ttl = NO_TTL
    soa = False
    end = len(resp)
    if end < 12:
        return offsets, min_ttl, soa
    qdcount, ancount, nscount, arcount = _COUNTS.unpack_from(resp, 4)
    if questions_end:
        pos = questions_end
    else:
        try:
            pos = skip_questions(resp, qdcount)
        except WireError:
            return offsets, min_ttl, soa
    auth_end = ancount + nscount
    rr_head = _RR_HEAD.unpack_from
    for n in range(auth_end + arcount):
        if pos < end and resp[pos] >= 0xC0:
            pos += 2
            if pos > end:
                break
        else:
            try:
                pos = name_end(resp, pos)
            except WireError:
                break
        if pos + 10 > end:          # a truncated last RR: as far as its fields go
            ttl, is_soa = _truncated_rr(resp, pos)
            if ttl is not None:
                offsets.append(pos + 4)
                min_ttl = min(min_ttl, ttl)
            soa = soa or (is_soa and ancount <= n < auth_end)
            break
        rtype, rclass, ttl, rdlen = rr_head(resp, pos)
        if rtype == TYPE_OPT:
            break
        if rtype == TYPE_SOA and rclass == CLASS_IN and ancount <= n < auth_end:
            soa = True
        offsets.append(pos + 4)
        if ttl < min_ttl:
            min_ttl = ttl
        pos += 10 + rdlen
        if pos > end:
            break
    return offsets, min_ttl, soa


def _truncated_rr(resp: bytes | bytearray, pos: int) -> tuple[int | None, bool]:
    """An RR header cut short at `pos`: (its TTL if the TTL fits, whether it is IN SOA);
    an OPT header counts as neither."""
    end = len(resp)
    if pos + 4 > end:
        return None, False
    rtype, rclass = _U16.unpack_from(resp, pos)[0], _U16.unpack_from(resp, pos + 2)[0]
    if rtype == TYPE_OPT:
        return None, False
    is_soa = rtype == TYPE_SOA and rclass == CLASS_IN
    if pos + 8 > end:
        return None, is_soa
    return _U32.unpack_from(resp, pos + 4)[0], is_soa
