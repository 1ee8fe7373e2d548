"""The few protobuf encoding steps dnsdist's log messages need (PBDNSMessage, dnstap): varints
and length-delimited fields, written by hand so no schema compiler or runtime is involved."""
from __future__ import annotations


def varint(n: int) -> bytes:
    out = bytearray()
    n &= 0xFFFFFFFFFFFFFFFF
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(value)) + value
