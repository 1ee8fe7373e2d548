"""Wildcard UDP listeners (0.0.0.0, ::): each query's own destination address, as dnsdist reads
it (IP_PKTINFO / IPV6_RECVPKTINFO), so the answer leaves from the address the client asked
(a host with several addresses would otherwise answer from its primary one, and the client
would drop the answer) and dq.localaddr is the real one.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)          # Linux value; Python 3.11 lacks it
ANCILLARY_SIZE = socket.CMSG_SPACE(20)
_IN_PKTINFO = struct.Struct("=i4s4s")                 # ifindex, spec_dst, addr
_IN6_PKTINFO = struct.Struct("=16si")                 # addr, ifindex


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def enable(sock: socket.socket, family: int) -> None:
    """Ask the kernel for each datagram's destination address."""
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)


class LocalUDPSocket:
    """The listener's socket as the packet path uses it for one query: answers leave from the
    address that query was sent to."""

    __slots__ = ("ancillary", "local", "sock")

    def __init__(self, sock: socket.socket, ancillary: list, local: tuple[str, int]) -> None:
        self.sock, self.ancillary, self.local = sock, ancillary, local

    def sendto(self, data: bytes, client: Any) -> int:
        return self.sock.sendmsg([data], self.ancillary, 0, client)


def destination(ancdata: list, port: int) -> tuple[list, tuple[str, int]] | None:
    """(the ancillary data that makes an answer leave from the query's destination, that
    destination), from recvmsg's ancillary data; None when the kernel gave none."""
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            ifindex, _, addr = _IN_PKTINFO.unpack_from(data)
            reply = _IN_PKTINFO.pack(0, addr, b"\0\0\0\0")
            return [(socket.IPPROTO_IP, IP_PKTINFO, reply)], (socket.inet_ntoa(addr), port)
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 20:
            addr, ifindex = _IN6_PKTINFO.unpack_from(data)
            reply = _IN6_PKTINFO.pack(addr, ifindex)
            host = socket.inet_ntop(socket.AF_INET6, addr)
            return [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, reply)], (host, port)
    return None
