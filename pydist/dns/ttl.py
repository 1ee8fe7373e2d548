"""TTLs of wire-format DNS answers, as dnsdist's ageDNSPacket/getDNSPacketMinTTL see them.

Pure functions on bytes that never raise: the walk (pydist.dns.reader.ttl_walk) goes as far as
a truncated or garbled packet goes, like pdns's DNSPacketMangler. It skips every question, then
visits each RR of answer, authority and additional, stopping at the first OPT RR.
"""

from __future__ import annotations

import struct

from pydist.dns.reader import NO_TTL, message_end, ttl_walk

__all__ = ["NO_TTL", "message_end"]
_U32 = struct.Struct("!I")
_walk = ttl_walk


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
