"""EDNS Client Subnet towards backends (useClientSubnet): build the option, put it in the query,
take what dnsdist added back out of the response. Pure functions on bytes that never raise.

Observed on dnsdist 1.7.3: a query without OPT gets `OPT(payload 512, rcode/version/flags 0)`
holding only the ECS option, and the whole OPT leaves the response again; a query with an OPT
but no ECS gets the option appended to its options and only that option leaves the response; a
client's own ECS is kept unless the override is on (then its content is replaced in place).
"""
from __future__ import annotations

import ipaddress

from pydist.dns.ttl import records_end, skip_name

OPT_ECS = 8
_TYPE_OPT = 41
ADDED_OPT_PAYLOAD = 512
_ADDED_OPT_HEAD = b"\x00\x00\x29" + ADDED_OPT_PAYLOAD.to_bytes(2, "big") + b"\x00\x00\x00\x00"

# what apply_ecs did, for strip_ecs on the way back
NOTHING_ADDED, ECS_ADDED, EDNS_ADDED = 0, 1, 2


def ecs_option(address: str, prefix: int) -> bytes:
    """The ECS option (code, length, family, source prefix, scope 0, truncated address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        ip = ipaddress.ip_address("0.0.0.0")
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = 32 if ip.version == 4 else 128
    prefix = max(0, min(int(prefix), bits))
    raw = bytearray(ip.packed[:(prefix + 7) // 8])
    if prefix % 8 and raw:
        raw[-1] &= (0xFF << (8 - prefix % 8)) & 0xFF
    family = 1 if ip.version == 4 else 2
    body = family.to_bytes(2, "big") + bytes((prefix, 0)) + bytes(raw)
    return OPT_ECS.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def locate_opt(pkt: bytes) -> tuple[int, int]:
    """(start, end) of the first OPT RR in the additional section, or (-1, -1)."""
    n = len(pkt)
    if n < 12:
        return -1, -1
    qd, an, ns, ar = (int.from_bytes(pkt[i:i + 2], "big") for i in (4, 6, 8, 10))
    pos = 12
    for _ in range(qd):
        pos = skip_name(pkt, pos)
        if pos < 0 or pos + 4 > n:
            return -1, -1
        pos += 4
    for i in range(an + ns + ar):
        start = pos
        pos = skip_name(pkt, pos)
        if pos < 0 or pos + 10 > n:
            return -1, -1
        rtype = (pkt[pos] << 8) | pkt[pos + 1]
        rdlen = (pkt[pos + 8] << 8) | pkt[pos + 9]
        end = pos + 10 + rdlen
        if end > n:
            return -1, -1
        if rtype == _TYPE_OPT and i >= an + ns:
            return start, end
        pos = end
    return -1, -1


def _options(pkt: bytes, rdata: int, end: int) -> list[tuple[int, int, int]] | None:
    """(code, start, end) of each option in an OPT rdata, or None when it is garbled."""
    out = []
    pos = rdata
    while pos < end:
        if pos + 4 > end:
            return None
        code = (pkt[pos] << 8) | pkt[pos + 1]
        nxt = pos + 4 + ((pkt[pos + 2] << 8) | pkt[pos + 3])
        if nxt > end:
            return None
        out.append((code, pos, nxt))
        pos = nxt
    return out


def _with_rdata(pkt: bytes, start: int, end: int, rdata: bytes) -> bytes:
    """The packet with the OPT RR at start..end given a new rdata."""
    head = skip_name(pkt, start) + 8
    return pkt[:head] + len(rdata).to_bytes(2, "big") + rdata + pkt[end:]


def apply_ecs(query: bytes, option: bytes, override: bool) -> tuple[bytes | None, int]:
    """The query as sent to a useClientSubnet backend and what was added (ECS_ADDED,
    EDNS_ADDED or NOTHING_ADDED); None when the query is too garbled to carry ECS (dropped)."""
    start, end = locate_opt(query)
    if start < 0:
        if len(query) < 12 or _walk_fails(query):
            return None, NOTHING_ADDED
        ar = ((query[10] << 8) | query[11]) + 1
        rr = _ADDED_OPT_HEAD + len(option).to_bytes(2, "big") + option
        return query[:10] + ar.to_bytes(2, "big") + query[12:] + rr, EDNS_ADDED
    rdata = skip_name(query, start) + 10
    opts = _options(query, rdata, end)
    if opts is None:
        return None, NOTHING_ADDED
    for code, s, e in opts:
        if code == OPT_ECS:
            if not override:
                return query, NOTHING_ADDED
            new = query[rdata:s] + option + query[e:end]
            return _with_rdata(query, start, end, new), NOTHING_ADDED
    return _with_rdata(query, start, end, query[rdata:end] + option), ECS_ADDED


def _walk_fails(query: bytes) -> bool:
    """True when the records cannot be walked to the end of the packet."""
    return records_end(query) < 0


def strip_ecs(resp: bytes, added: int) -> bytes:
    """The backend's answer without what apply_ecs added: the whole OPT RR (EDNS_ADDED) or its
    ECS option (ECS_ADDED). An answer without OPT, or a garbled one, is left as it came."""
    if added == NOTHING_ADDED:
        return resp
    start, end = locate_opt(resp)
    if start < 0:
        return resp
    if added == EDNS_ADDED:
        ar = max(0, ((resp[10] << 8) | resp[11]) - 1)
        return resp[:10] + ar.to_bytes(2, "big") + resp[12:start] + resp[end:]
    rdata = skip_name(resp, start) + 10
    opts = _options(resp, rdata, end)
    if opts is None:
        return resp
    kept = b"".join(resp[s:e] for code, s, e in opts if code != OPT_ECS)
    if len(kept) == end - rdata:
        return resp
    return _with_rdata(resp, start, end, kept)


def query_for_backend(query: bytes, remote: tuple, dq: object, settings: object
                      ) -> tuple[bytes | None, int]:
    """apply_ecs with the subnet a query gets: SetECSAction's fixed one, else the client's
    address cut to the dq's prefix length (setECSSourcePrefixV4/V6 unless a rule changed it)."""
    if dq is None:
        address = remote[0]
        prefix = settings.ecs_source_prefix_v6 if _is_v6(address) else settings.ecs_source_prefix_v4
        return apply_ecs(query, ecs_option(address, prefix), settings.ecs_override)
    fixed = dq.ecs_subnet
    address, prefix = fixed if fixed is not None else (remote[0], dq.ecs_prefix_length)
    return apply_ecs(query, ecs_option(address, prefix), dq.ecs_override)


def ecs_defaults(dq: object, settings: object) -> None:
    """A new DNSQuestion's ECS fields as dnsdist starts them (what Lua's dq reads)."""
    dq.ecs_override = settings.ecs_override
    dq.ecs_prefix_length = settings.ecs_source_prefix_v6 if _is_v6(dq.remote[0]) \
        else settings.ecs_source_prefix_v4


def _is_v6(address: str) -> bool:
    return ":" in address and not address.startswith("::ffff:")


def zero_scope_lookup(cache: object, client_query: bytes, query: bytes, qname_end: int,
                      udp: bool, now: float, stale: int, eligible: bool
                      ) -> tuple[bytearray | None, object, tuple | None]:
    """parseECS without disableZeroScope: look up the query as the client sent it first (a
    scope-0 answer serves every subnet; the cache counts that miss too), then as sent. Returns
    (answer, key, (key, query) to store a scope-0 answer under, when the client had no ECS)."""
    resp, zero_key = cache.lookup(client_query, qname_end, udp, now, stale, exact=False)
    if resp is not None:
        return resp, None, None
    resp, key = cache.lookup(query, qname_end, udp, now, stale, exact=False)
    return resp, key, ((zero_key, client_query) if eligible and zero_key is not None else None)


def scope_is_zero(resp: bytes) -> bool:
    """True when the answer's OPT holds an ECS option with scope prefix 0."""
    start, end = locate_opt(resp)
    if start < 0:
        return False
    rdata = skip_name(resp, start) + 10
    for code, s, e in _options(resp, rdata, end) or ():
        if code == OPT_ECS:
            return e - s >= 8 and resp[s + 7] == 0
    return False


def checked_name_end(pkt: bytes, pos: int) -> int:
    """Offset past the name at ``pos`` as dnsdist's DNSName reads it while decompressing, or -1
    where it throws: a pointer not strictly before the name (part) it continues (a forward
    reference, or a loop), more than 100 jumps, a name over 255 bytes, reserved label bits."""
    n = len(pkt)
    start, end, size, jumps = pos, -1, 0, 0
    while pos < n:
        length = pkt[pos]
        if length >= 0xC0:
            if pos + 1 >= n:
                return -1
            target = ((length & 0x3F) << 8) | pkt[pos + 1]
            jumps += 1
            if target >= start or jumps > 100:
                return -1
            if end < 0:
                end = pos + 2
            start = pos = target
            continue
        if length & 0xC0:
            return -1
        if length == 0:
            return end if end >= 0 else pos + 1
        size += length + 1
        if size > 254:
            return -1
        pos += length + 1
    return -1


def parses_as_dnsdist(resp: bytes) -> bool:
    """True when every record of the answer walks with its names decompressed as dnsdist's
    PacketReader does. dnsdist reads an answer this way when it takes out the EDNS/ECS it
    added, so one failing here is dropped (observed: a forward compression pointer in an
    answer record's owner, with an OPT record, and ECS added to the query)."""
    if len(resp) < 12:
        return False
    counts = [(resp[i] << 8) | resp[i + 1] for i in (4, 6, 8, 10)]
    n = len(resp)
    pos = 12
    for _ in range(counts[0]):
        pos = checked_name_end(resp, pos)
        if pos < 0 or pos + 4 > n:
            return False
        pos += 4
    for _ in range(counts[1] + counts[2] + counts[3]):
        pos = checked_name_end(resp, pos)
        if pos < 0 or pos + 10 > n:
            return False
        pos += 10 + ((resp[pos + 8] << 8) | resp[pos + 9])
        if pos > n:
            return False
    return True


def ecs_response(resp: bytes, st: object) -> bytes | None:
    """A useClientSubnet backend's answer on its way back: a scope-0 answer goes into the
    cache under the client's own query (zero-scope), then what we added is taken out. None:
    dnsdist 1.7.3 drops it (it added EDNS/ECS, the answer has additional records, and they do
    not parse)."""
    if st.ecs != NOTHING_ADDED and resp[10:12] != b"\x00\x00" and not parses_as_dnsdist(resp):
        return None
    zero = st.zero
    if zero is not None and scope_is_zero(resp):
        st.cache_key, st.query = zero
    return strip_ecs(resp, st.ecs)
