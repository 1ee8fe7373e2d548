"""Proxy protocol v2 headers towards useProxyProtocol backends, as dnsdist 1.7.3 sends them.

Observed: a PROXY header (client source, frontend destination, UDP or TCP) before every UDP
datagram and once at the start of each TCP connection (before the length prefix); TLVs from
SetAdditionalProxyProtocolValueAction follow the addresses; health checks carry a LOCAL header.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
LOCAL_HEADER = SIGNATURE + b"\x20\x00\x00\x00"
_PROXY = 0x21
_TCP, _UDP = 0x01, 0x02
_INET, _INET6 = 0x10, 0x20


def _packed(address: str) -> bytes:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).packed
    except ValueError:
        return b""


def proxy_header(source: tuple, destination: tuple, tcp: bool,
                 values: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """A v2 PROXY header for one query: source/destination (host, port[, ...]) and TLVs.
    Families that differ or do not parse give a LOCAL header (the backend sees no address)."""
    src, dst = _packed(source[0]), _packed(destination[0])
    if len(dst) != len(src) and src and dst:
        # a v4 frontend reached by a v6-mapped client and the like: map both to v6
        src, dst = _as_v6(src), _as_v6(dst)
    if not src or len(src) != len(dst):
        return LOCAL_HEADER
    fam = (_INET if len(src) == 4 else _INET6) | (_TCP if tcp else _UDP)
    body = bytearray(src + dst + int(source[1]).to_bytes(2, "big")
                     + int(destination[1]).to_bytes(2, "big"))
    for kind, value in values:
        body += bytes((kind & 0xFF,)) + len(value).to_bytes(2, "big") + value
    return SIGNATURE + bytes((_PROXY, fam)) + len(body).to_bytes(2, "big") + bytes(body)


def _as_v6(packed: bytes) -> bytes:
    return b"\x00" * 10 + b"\xff\xff" + packed if len(packed) == 4 else packed


def parse_header(data: bytes) -> tuple[dict, int] | None:
    """(fields, header length) of a v2 header at the start of data, or None; for tests and
    tools that play the backend."""
    if len(data) < 16 or not data.startswith(SIGNATURE):
        return None
    ver_cmd, fam = data[12], data[13]
    length = int.from_bytes(data[14:16], "big")
    if len(data) < 16 + length:
        return None
    out: dict = {"command": ver_cmd & 0x0F, "tcp": fam & 0x0F == _TCP, "values": []}
    body = data[16:16 + length]
    alen = {_INET: 4, _INET6: 16}.get(fam & 0xF0)
    if out["command"] == 1 and alen:
        a = alen
        out["source"] = (str(ipaddress.ip_address(body[:a])),
                         int.from_bytes(body[2 * a:2 * a + 2], "big"))
        out["destination"] = (str(ipaddress.ip_address(body[a:2 * a])),
                              int.from_bytes(body[2 * a + 2:2 * a + 4], "big"))
        pos = 2 * a + 4
        while pos + 3 <= len(body):
            n = int.from_bytes(body[pos + 1:pos + 3], "big")
            out["values"].append((body[pos], bytes(body[pos + 3:pos + 3 + n])))
            pos += 3 + n
    return out, 16 + length


def header_for_query(remote: tuple, frontend: object, tcp: bool, dq: object) -> bytes:
    """The header for one query: client address, the frontend's address, TLVs from the rules."""
    local = proxy_destination(frontend, dq)
    values = getattr(dq, "proxy_values", None) if dq is not None else None
    return proxy_header(remote, local, tcp, values or ())


def proxy_destination(frontend: object, dq: object) -> tuple:
    """The destination a query's header names: the frontend's address, or the proxied
    destination of a setProxyProtocolACL client."""
    if dq is not None:
        return dq.local
    decl = getattr(frontend, "decl", frontend)
    return (decl.host, decl.port) if decl is not None else ("0.0.0.0", 0)
