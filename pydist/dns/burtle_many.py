"""lookup2 ("burtle", pydist/dns/burtle.py) of many byte strings of one length at once.

One lookup2 costs a few microseconds of Python per 12 bytes; the packet cache needs dnsdist's
hash of every key it stores, worked out for thousands of keys at a time (PacketCache._resolve).
Here each key is a 64-bit lane of one big Python integer (its 32-bit value, then 32 zero bits
that take the carries and borrows), so each step of the mix is one big-integer operation over
every key: the same result, about ten times sooner.
"""
from __future__ import annotations

import array

from pydist.dns.burtle import _GOLDEN

_LANE = 8          # bytes per lane
_ONE = (1).to_bytes(_LANE, "little")


def to_lanes(values: list[int]) -> int:
    """Each value (32 bits) in its own lane: the form burtle_lanes takes its inits in."""
    return int.from_bytes(array.array("Q", values).tobytes(), "little")


def _words(blob: bytes, stride: int, count: int, pos: int, length: int) -> int:
    """The little-endian 32-bit word at `pos` of each of `count` pieces of `length` bytes, the
    pieces `stride` bytes apart in `blob` (the first at 0), one per lane (bytes past a piece's
    end read as zero)."""
    out = bytearray(count * _LANE)
    for k in range(4):
        if pos + k < length:
            out[k::_LANE] = blob[pos + k::stride]
    return int.from_bytes(out, "little")


def burtle_many(datas: list[bytes], inits: list[int]) -> list[int]:
    """[burtle(d, i) for d, i in zip(datas, inits)], every `d` of the same length."""
    if not datas:
        return []
    size, count = len(datas[0]), len(datas)
    lanes = burtle_lanes(b"".join(datas), size, count, 0, size,
                         to_lanes([i & 0xFFFFFFFF for i in inits]))
    return lanes_list(lanes, count)


def lanes_list(lanes: int, count: int) -> list[int]:
    """Each lane's value, as a list."""
    out = array.array("Q")
    out.frombytes(lanes.to_bytes(count * _LANE, "little"))
    return out.tolist()


def burtle_lanes(blob: bytes, stride: int, count: int, start: int, size: int, c: int) -> int:
    """lookup2 of the `count` pieces blob[start + i * stride:][:size] (records of `stride`
    bytes, each piece `size` bytes at `start` in its record: no slice per piece), chained from
    `c`, each init in its lane (0: all zero); the hashes come back as lanes too, so the pieces
    of one key chain without a list in between (lanes_list reads them out)."""
    if start:
        blob = blob[start:]
    ones = int.from_bytes(_ONE * count, "little")
    m = 0xFFFFFFFF * ones                       # each lane's 32 bits
    two = (1 << 33) * ones                      # room for a - b - c in each lane
    a = b = _GOLDEN * ones
    full = size - size % 12
    pos = 0
    while True:
        x, y, z = (_words(blob, stride, count, pos + k, size) for k in (0, 4, 8))
        if pos < full:
            a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
        else:   # the last 0..11 bytes; the low byte of c is the length's
            a, b = (a + x) & m, (b + y) & m
            c = (c + size * ones + ((z << 8) & m)) & m
        a = ((a + two - b - c) & m) ^ ((c >> 13) & m)
        b = ((b + two - c - a) & m) ^ ((a << 8) & m)
        c = ((c + two - a - b) & m) ^ ((b >> 13) & m)
        a = ((a + two - b - c) & m) ^ ((c >> 12) & m)
        b = ((b + two - c - a) & m) ^ ((a << 16) & m)
        c = ((c + two - a - b) & m) ^ ((b >> 5) & m)
        a = ((a + two - b - c) & m) ^ ((c >> 3) & m)
        b = ((b + two - c - a) & m) ^ ((a << 10) & m)
        c = ((c + two - a - b) & m) ^ ((b >> 15) & m)
        if pos >= full:
            break
        pos += 12
    return c
