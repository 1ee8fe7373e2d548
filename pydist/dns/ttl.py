"""TTL walks over wire-format DNS answers, as dnsdist's ageDNSPacket/getDNSPacketMinTTL do.

Pure functions on bytes that never raise: a truncated or garbled packet is walked as far as it
goes (like pdns's DNSPacketMangler, which stops at the first out-of-range read). The walk skips
every question, then visits each RR of answer, authority and additional, stopping at the first
OPT RR. Compression pointers are skipped, never followed.
"""

from __future__ import annotations

import struct

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_COUNTS = struct.Struct("!4H")
_RR_HEAD = struct.Struct("!HHIH")   # type, class, TTL, rdlength
_TYPE_OPT = 41
_TYPE_SOA = 6
_CLASS_IN = 1
NO_TTL = 0xFFFFFFFF
"""What dnsdist's getDNSPacketMinTTL returns when it saw no RR (UINT32_MAX)."""


def skip_name(buf: bytes, pos: int) -> int:
    """Offset just past the wire name at ``pos`` (a pointer ends it), or -1 if it runs off."""
    end = len(buf)
    while True:
        if pos >= end:
            return -1
        length = buf[pos]
        pos += 1
        if length == 0:
            return pos
        if length >= 0xC0:
            pos += 1
            return pos if pos <= end else -1
        pos += length


def records_end(pkt: bytes | bytearray) -> int:
    """Offset just past the last record the header counts, or -1 when the packet runs short of
    them: what follows is trailing data (dnsdist's getDNSPacketLength)."""
    end = len(pkt)
    if end < 12:
        return -1
    qdcount, ancount, nscount, arcount = struct.unpack_from("!4H", pkt, 4)
    pos = 12
    for _ in range(qdcount):
        pos = skip_name(pkt, pos)
        if pos < 0 or pos + 4 > end:
            return -1
        pos += 4
    for _ in range(ancount + nscount + arcount):
        pos = skip_name(pkt, pos)
        if pos < 0 or pos + 10 > end:
            return -1
        pos += 10 + _U16.unpack_from(pkt, pos + 8)[0]
        if pos > end:
            return -1
    return pos


def message_end(pkt: bytes | bytearray) -> int:
    """Where the message ends and trailing data starts: the whole packet when it cannot be
    walked, as getDNSPacketLength answers."""
    end = records_end(pkt)
    return len(pkt) if end < 0 else end


def _walk(resp: bytes) -> tuple[list[int], int, bool]:
    """TTL offsets, minimum TTL (NO_TTL if none) and 'IN SOA seen in authority'.

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
    pos = 12
    for _ in range(qdcount):
        pos = skip_name(resp, pos)
        if pos < 0 or pos + 4 > end:
            return offsets, min_ttl, soa
        pos += 4
    auth_end = ancount + nscount
    rr_head = _RR_HEAD.unpack_from
    for n in range(auth_end + arcount):
        if pos < end and resp[pos] >= 0xC0:
            pos += 2
            if pos > end:
                break
        else:
            pos = skip_name(resp, pos)
            if pos < 0:
                break
        if pos + 10 > end:          # a truncated last RR: as far as its fields go
            ttl, is_soa = _truncated_rr(resp, pos)
            if ttl is not None:
                offsets.append(pos + 4)
                min_ttl = min(min_ttl, ttl)
            soa = soa or (is_soa and ancount <= n < auth_end)
            break
        rtype, rclass, ttl, rdlen = rr_head(resp, pos)
        if rtype == _TYPE_OPT:
            break
        if rtype == _TYPE_SOA and rclass == _CLASS_IN and ancount <= n < auth_end:
            soa = True
        offsets.append(pos + 4)
        if ttl < min_ttl:
            min_ttl = ttl
        pos += 10 + rdlen
        if pos > end:
            break
    return offsets, min_ttl, soa


def _truncated_rr(resp: bytes, pos: int) -> tuple[int | None, bool]:
    """An RR header cut short at ``pos``: (its TTL if the TTL fits, whether it is IN SOA);
    an OPT header counts as neither."""
    end = len(resp)
    if pos + 4 > end:
        return None, False
    rtype, rclass = _U16.unpack_from(resp, pos)[0], _U16.unpack_from(resp, pos + 2)[0]
    if rtype == _TYPE_OPT:
        return None, False
    is_soa = rtype == _TYPE_SOA and rclass == _CLASS_IN
    if pos + 8 > end:
        return None, is_soa
    return _U32.unpack_from(resp, pos + 4)[0], is_soa


def ttl_offsets(resp: bytes) -> tuple[int, ...]:
    """Offsets of every RR TTL that dnsdist would age, so a stored answer is walked only once."""
    return tuple(_walk(resp)[0])


def min_ttl(resp: bytes) -> int | None:
    """Smallest RR TTL (answer+authority+additional, up to OPT); None if no RR was found.

    Like dnsdist, a TTL of exactly 0xFFFFFFFF is indistinguishable from 'no RR'.
    """
    value = _walk(resp)[1]
    return None if value == NO_TTL else value


def has_soa_in_authority(resp: bytes) -> bool:
    """True if an IN SOA sits in the authority section (a NODATA answer's negative TTL)."""
    return _walk(resp)[2]


def min_ttl_and_soa(resp: bytes) -> tuple[int | None, bool, tuple[int, ...]]:
    """All three results of one walk: what the cache needs at insert time."""
    offsets, value, soa = _walk(resp)
    return (None if value == NO_TTL else value), soa, tuple(offsets)


def age_ttls_at(buf: bytearray, offsets: tuple[int, ...], delta: int) -> None:
    """Decrement the TTLs at ``offsets`` by ``delta`` seconds, floor 0, in place."""
    if delta <= 0:
        return
    unpack = _U32.unpack_from
    pack = _U32.pack_into
    for off in offsets:
        ttl = unpack(buf, off)[0]
        pack(buf, off, ttl - delta if ttl > delta else 0)


def set_ttls_at(buf: bytearray, offsets: tuple[int, ...], ttl: int) -> None:
    """Write ``ttl`` at every offset (stale answers); 0 writes nothing, as dnsdist's visitor."""
    if ttl == 0:
        return
    pack = _U32.pack_into
    for off in offsets:
        pack(buf, off, ttl)


def age_ttls(resp: bytearray, delta: int) -> None:
    """Decrement every RR TTL (all sections, stop at OPT) by ``delta``, floor 0, in place."""
    age_ttls_at(resp, ttl_offsets(resp), delta)


def set_ttls(resp: bytearray, ttl: int) -> None:
    """Set every RR TTL (all sections, stop at OPT) to ``ttl``, in place."""
    set_ttls_at(resp, ttl_offsets(resp), ttl)
