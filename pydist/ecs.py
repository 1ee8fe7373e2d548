"""EDNS Client Subnet, as dnsdist 1.7.3 adds it to queries for servers with useClientSubnet=true:
the client's address cut to setECSSourcePrefixV4/V6 (or SetECSPrefixLengthAction's), an existing
client ECS kept unless setECSOverride/SetECSOverrideAction, nothing when SetDisableECSAction ran.
A query without EDNS gets an OPT (payload 512) for it; what was added is taken out of the
answer again before the client (and the cache) sees it."""
from __future__ import annotations

import socket

from pydist.dns.ttl import skip_name

ECS_CODE = 8
ADDED_OPT_PAYLOAD = 512


def ecs_option(host: str, v4_bits: int, v6_bits: int) -> bytes:
    """The ECS option (code, length, family, source prefix, scope 0, address bytes)."""
    host = host.split("%", 1)[0]
    try:
        raw, family, bits = socket.inet_pton(socket.AF_INET, host), 1, v4_bits
    except OSError:
        raw, family, bits = socket.inet_pton(socket.AF_INET6, host), 2, v6_bits
        if raw[:12] == b"\x00" * 10 + b"\xff\xff":            # mapped IPv4: sent as IPv4
            raw, family, bits = raw[12:], 1, v4_bits
    bits = max(0, min(bits, len(raw) * 8))
    nbytes = (bits + 7) // 8
    addr = bytearray(raw[:nbytes])
    if bits % 8 and addr:
        addr[-1] &= (0xFF << (8 - bits % 8)) & 0xFF
    data = family.to_bytes(2, "big") + bytes((bits, 0)) + bytes(addr)
    return ECS_CODE.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def add_ecs(query: bytes, qname_end: int, option: bytes,
            override: bool) -> tuple[bytes, bool, bool]:
    """(query to send, OPT added, ECS added). A client ECS is replaced only with override."""
    end = qname_end + 4
    if query[6:12] == b"\x00" * 6 and len(query) == end:           # no EDNS: an OPT for it
        opt = (b"\x00\x00\x29" + ADDED_OPT_PAYLOAD.to_bytes(2, "big") + b"\x00\x00\x00\x00"
               + len(option).to_bytes(2, "big") + option)
        return query[:10] + b"\x00\x01" + query[12:] + opt, True, True
    off = _plain_opt(query, end)
    if off < 0:
        return query, False, False              # other records around: left as it is
    rdlen = (query[off + 9] << 8) | query[off + 10]
    start, stop = off + 11, off + 11 + rdlen
    existing = _find_option(query, start, stop, ECS_CODE)
    if existing is not None:
        if not override:
            return query, False, False
        a, b = existing
        rdata = query[start:a] + option + query[b:stop]
    else:
        rdata = query[start:stop] + option
    out = (query[:off + 9] + len(rdata).to_bytes(2, "big") + rdata + query[stop:])
    return out, False, existing is None


def _plain_opt(pkt: bytes, end: int) -> int:
    """Offset of the OPT right after the question of a query with only that record, or -1."""
    if (pkt[6:10] == b"\x00\x00\x00\x00" and pkt[10:12] == b"\x00\x01" and len(pkt) >= end + 11
            and pkt[end] == 0 and pkt[end + 1:end + 3] == b"\x00\x29"):
        return end
    return -1


def _find_option(pkt: bytes, start: int, stop: int, code: int) -> tuple[int, int] | None:
    pos = start
    while pos + 4 <= stop:
        length = (pkt[pos + 2] << 8) | pkt[pos + 3]
        if (pkt[pos] << 8) | pkt[pos + 1] == code:
            return pos, min(stop, pos + 4 + length)
        pos += 4 + length
    return None


def strip_added(resp: bytes, edns_added: bool, ecs_added: bool) -> bytes:
    """The answer without what we added: the whole OPT, or only its ECS option."""
    off = _find_response_opt(resp)
    if off < 0:
        return resp
    rdlen = (resp[off + 9] << 8) | resp[off + 10]
    stop = off + 11 + rdlen
    if edns_added:
        arcount = ((resp[10] << 8) | resp[11]) - 1
        return resp[:10] + arcount.to_bytes(2, "big") + resp[12:off] + resp[stop:]
    found = _find_option(resp, off + 11, stop, ECS_CODE) if ecs_added else None
    if found is None:
        return resp
    a, b = found
    rdata = resp[off + 11:a] + resp[b:stop]
    return resp[:off + 9] + len(rdata).to_bytes(2, "big") + rdata + resp[stop:]


def _find_response_opt(resp: bytes) -> int:
    """Offset of the OPT RR among the additional records, or -1."""
    n = len(resp)
    if n < 12:
        return -1
    counts = [(resp[4 + 2 * i] << 8) | resp[5 + 2 * i] for i in range(4)]
    pos = 12
    for _ in range(counts[0]):
        pos = skip_name(resp, pos)
        if pos < 0:
            return -1
        pos += 4
    for i in range(counts[1] + counts[2] + counts[3]):
        start = pos
        pos = skip_name(resp, pos)
        if pos < 0 or pos + 10 > n:
            return -1
        if i >= counts[1] + counts[2] and resp[pos:pos + 2] == b"\x00\x29":
            return start
        pos += 10 + ((resp[pos + 8] << 8) | resp[pos + 9])
    return -1
