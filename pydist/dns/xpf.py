"""XPF (draft-bellis-dnsop-xpf), as dnsdist 1.7.3 adds it for `newServer{addXPF=code}`: one
record at the end of the query sent to the backend, telling it the client's addresses.

Record: root owner, type = the configured code, class IN, TTL 0; rdata = IP version (4/6),
protocol (17 UDP / 6 TCP, the client's transport), source address, destination address,
source port, destination port. Added after the cache lookup, so the cache key never holds it.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import Any

MAX_UDP_QUERY = 4096        # dnsdist's working buffer: no XPF when it would not fit


def xpf_rdata(tcp: bool, remote: Any, local: Any) -> bytes | None:
    """The rdata for one query, or None when the two addresses are not of one family."""
    src = ipaddress.ip_address(str(remote[0]).split("%", 1)[0])
    dst = ipaddress.ip_address(str(local[0]).split("%", 1)[0])
    if src.version != dst.version:
        if src.version == 6 and src.ipv4_mapped is not None:
            src = src.ipv4_mapped
        else:
            return None
    return (bytes((src.version, 6 if tcp else 17)) + src.packed + dst.packed
            + struct.pack("!HH", int(remote[1]), int(local[1])))


def add_xpf(data: bytes, code: int, tcp: bool, remote: Any, local: Any) -> bytes:
    """The query with its XPF record appended and ARCOUNT raised (unchanged if it would not fit)."""
    rdata = xpf_rdata(tcp, remote, local)
    if rdata is None or len(data) < 12:
        return data
    record = b"\x00" + struct.pack("!HHIH", code, 1, 0, len(rdata)) + rdata
    if not tcp and len(data) + len(record) > MAX_UDP_QUERY:
        return data
    arcount = (data[10] << 8 | data[11]) + 1
    if arcount > 0xFFFF:
        return data
    return data[:10] + struct.pack("!H", arcount) + data[12:] + record
