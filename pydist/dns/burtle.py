"""Bob Jenkins' lookup2 hash ("burtle"), as PowerDNS uses it for dnsdist's packet-cache key.

Written from the algorithm in pdns's burtle.hh; only needed where the 32-bit key is visible
(``PacketCache.dump``), since the cache itself keys a dict on the bytes that feed this hash.
"""

from __future__ import annotations

import struct

_M = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9
_TRIPLES = struct.Struct("<3I")
_LOWER = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """burtlemix: the reversible 96-bit mix of lookup2, in 32-bit unsigned arithmetic."""
    a = (a - b - c) & _M; a ^= c >> 13
    b = (b - c - a) & _M; b ^= (a << 8) & _M
    c = (c - a - b) & _M; c ^= b >> 13
    a = (a - b - c) & _M; a ^= c >> 12
    b = (b - c - a) & _M; b ^= (a << 16) & _M
    c = (c - a - b) & _M; c ^= b >> 5
    a = (a - b - c) & _M; a ^= c >> 3
    b = (b - c - a) & _M; b ^= (a << 10) & _M
    c = (c - a - b) & _M; c ^= b >> 15
    return a, b, c


def burtle(data: bytes, init: int) -> int:
    """lookup2 of ``data`` chained from ``init`` (the previous piece's hash), as pdns ``burtle``."""
    length = len(data)
    a = b = _GOLDEN
    c = init & _M
    full = length - length % 12
    unpack = _TRIPLES.unpack_from
    for pos in range(0, full, 12):
        x, y, z = unpack(data, pos)
        a, b, c = _mix((a + x) & _M, (b + y) & _M, (c + z) & _M)
    # The last 0..11 bytes: the low byte of c is reserved for the length.
    tail = bytes(data[full:]) + bytes(12 - (length - full))
    x, y, z = unpack(tail, 0)
    c = (c + length + ((z << 8) & _M)) & _M
    a, b, c = _mix((a + x) & _M, (b + y) & _M, c)
    return c


def burtle_ci(data: bytes, init: int) -> int:
    """Case-insensitive lookup2 (ASCII A-Z lowered first), as pdns ``burtleCI`` over a qname."""
    return burtle(bytes(data).translate(_LOWER), init)
