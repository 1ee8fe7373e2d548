"""Incoming proxy protocol v2 (setProxyProtocolACL), as dnsdist 1.7.3 handles it.

Observed on the 1.7.3 binary: a UDP datagram from an address in the proxy-protocol ACL counts
in `queries` and must start with a header, or it is dropped with proxy-protocol-invalid++; it
skips the query ACL (unless setProxyProtocolApplyACLToProxiedClients(true), which checks the
proxied source), and the rest runs as a query from the proxied source to the proxied
destination, its TLVs readable by ProxyProtocolValueRule. A LOCAL header keeps the real
addresses. Over TCP the real source must pass the ACL first, then the header leads the stream.
"""
from __future__ import annotations

from typing import Any

from pydist.dns.proxyprotocol import SIGNATURE, parse_header

HEADER_SIZE = 16


class ProxiedUDPSocket:
    """What the packet path sends a proxied UDP query's answer through: to the proxy, whatever
    client address it names (the proxied one, kept for the rules, rings and counters)."""

    __slots__ = ("local", "proxy", "sock", "values")

    def __init__(self, sock: Any, proxy: Any, values: list, local: Any) -> None:
        self.sock, self.proxy, self.values, self.local = sock, proxy, values, local

    def sendto(self, data: bytes, _client: Any) -> int:
        return self.sock.sendto(data, self.proxy)


def read_header(data: bytes, max_payload: int) -> tuple[Any, Any, list, int] | None | bool:
    """(source or None for LOCAL, destination or None, TLVs, header length); False while the
    header is still incomplete (TCP); None when it is invalid."""
    if len(data) < HEADER_SIZE:
        return False if SIGNATURE.startswith(bytes(data[:12])) else None
    if not data.startswith(SIGNATURE):
        return None
    length = int.from_bytes(data[14:16], "big")
    if length > max_payload or data[12] >> 4 != 2:
        return None
    if len(data) < HEADER_SIZE + length:
        return False
    try:
        parsed = parse_header(bytes(data[:HEADER_SIZE + length]))
    except ValueError:
        return None
    if parsed is None:
        return None
    fields, size = parsed
    if fields["command"] == 0:
        return None, None, [], size
    if fields["command"] != 1 or "source" not in fields:
        return None
    return fields["source"], fields["destination"], fields["values"], size
