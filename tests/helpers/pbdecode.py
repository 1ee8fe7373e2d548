"""A schema-less protobuf reader for tests: a message as a list of (field, value), nested
messages decoded where the caller says they are."""
from __future__ import annotations


def _varint(b: bytes, i: int) -> tuple[int, int]:
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return x, i


def decode(b: bytes, nested: dict[int, dict] | None = None) -> list[tuple[int, object]]:
    """`nested` maps a field number to the `nested` map of its own submessage."""
    out: list[tuple[int, object]] = []
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, i = _varint(b, i)
            out.append((number, value))
        elif kind == 2:
            n, i = _varint(b, i)
            raw = b[i:i + n]
            i += n
            sub = (nested or {}).get(number)
            out.append((number, decode(raw, sub) if sub is not None else raw))
        elif kind == 5:
            out.append((number, int.from_bytes(b[i:i + 4], "little")))
            i += 4
        elif kind == 1:
            out.append((number, int.from_bytes(b[i:i + 8], "little")))
            i += 8
        else:
            raise ValueError(f"wire type {kind} not expected here")
    return out
