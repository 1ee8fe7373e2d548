"""DNSCrypt listeners (addDNSCryptBind): the UDP drain and the TCP protocol around the packet
path. The query is decrypted here, then runs the packet path as any other (ACL already
applied, rules, cache, backends); its answer is encrypted on the way out by the socket (UDP)
or the connection (TCP) the path answers through.

Counted as dnsdist 1.7.3 counts (observed on the binary):
  - a datagram shorter than a DNS header: non-compliant, not a query;
  - anything else that passes the ACL is a query, on the frontend too; what is neither an
    encrypted query nor a certificate request is dropped silently (no other counter);
  - a decrypted query shorter than a header, or with QR set: non-compliant, dropped;
  - a decrypted query without a question gets its NOTIMP in clear (1.7.3 sends it before
    the encryption step);
  - over TCP, a certificate request is answered with an empty message (a zero length and no
    bytes: 1.7.3 queues an empty response there) and the connection goes on; anything that is
    not DNSCrypt closes the connection.
"""
from __future__ import annotations

import socket
import time
from typing import Any

from pydist.dnscrypt.query import DNSCryptQuery, read_packet
from pydist.frontend.pktinfo import ANCILLARY_SIZE, LocalUDPSocket, destination
from pydist.frontend.tcp import TCPClientConnection
from pydist.packet_path import MAX_UDP_QUERY, UDP_BUDGET
from pydist.rule_path import sendto

RING_UDP, RING_TCP = "DNSCryptUDP", "DNSCryptTCP"     # grepq's protocol names


class DNSCryptUDPSocket:
    """What the packet path answers one DNSCrypt UDP query through: encrypts, then sends."""

    __slots__ = ("query", "sock")

    def __init__(self, sock: Any, query: DNSCryptQuery) -> None:
        self.sock, self.query = sock, query

    def sendto(self, data: bytes, client: Any) -> int:
        packet = self.query.encrypt_response(data, False)
        return 0 if packet is None else self.sock.sendto(packet, client)

    @property
    def local(self) -> Any:
        """The query's destination, from a wildcard or proxied socket (dq.localaddr)."""
        return getattr(self.sock, "local", None)

    @property
    def values(self) -> Any:
        """The proxy protocol TLVs of a proxied query."""
        return getattr(self.sock, "values", None)


def udp_readable(path: Any, sock: socket.socket, fe: Any, pktinfo: bool = False) -> None:
    """Drain one DNSCrypt UDP listener (bounded per wake-up, as the plain drain)."""
    stats = path.stats
    acl = path.reg.acl
    proxy_acl = path.proxy_acl
    ctx = fe.decl.dnscrypt
    now = time.time()
    for _ in range(UDP_BUDGET):
        try:
            if pktinfo:
                data, anc, _, addr = sock.recvmsg(MAX_UDP_QUERY + 1, ANCILLARY_SIZE)
                local = destination(anc, fe.decl.port)
                out: Any = sock if local is None else LocalUDPSocket(sock, *local)
            else:
                data, addr = sock.recvfrom(MAX_UDP_QUERY + 1)
                out = sock
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            continue
        if proxy_acl is not None and proxy_acl.match(addr[0]):
            proxied = path.read_proxied(data, addr, fe, out)    # header first, then DNSCrypt
            if proxied is None:
                continue
            data, addr, out = proxied
        elif len(data) < 12 or len(data) > MAX_UDP_QUERY:
            stats.noncompliant_queries += 1
            continue
        elif not acl.match(addr[0]):
            stats.acl_drops += 1
            continue
        else:
            stats.queries += 1
            fe.queries += 1
        read = read_packet(ctx, data, False, now)
        if read is None:
            continue
        query, state = read
        if state is None:                       # the certificate answer, in clear
            sendto(out, query, addr)
        elif len(query) < 12 or query[2] & 0x80:
            stats.noncompliant_queries += 1
        else:
            path.rings.queries.append((now, addr, query, RING_UDP))
            sink = out if query[4:6] == b"\x00\x00" else DNSCryptUDPSocket(out, state)
            path.process(query, addr, fe, sink, True, now, None)


class SealedReply:
    """How one DNSCrypt TCP query is answered: encrypted for it, then framed by the connection
    (queries may be in flight together: each carries its own state). `__self__` is the
    connection, as for a plain TCP query's bound reply (the rules read its proxy TLVs)."""

    __slots__ = ("__self__", "query")

    def __init__(self, conn: "DNSCryptTCPConnection", query: DNSCryptQuery) -> None:
        self.__self__, self.query = conn, query

    def __call__(self, resp: bytes | None, more: bool = False) -> None:
        if resp is not None:
            resp = self.query.encrypt_response(resp, True)
        self.__self__._reply(resp, more)


class DNSCryptTCPConnection(TCPClientConnection):
    """A DNSCrypt TCP client: the TCP frontend, with each query opened and its answer sealed."""

    ring_proto = RING_TCP

    def unwrap(self, packet: bytes) -> bytes | None:
        read = read_packet(self.fe.decl.dnscrypt, packet, True, time.time())
        if read is None:
            self._reply(None)           # not DNSCrypt: the connection is closed
            return None
        query, state = read
        if state is None:               # a certificate request: 1.7.3's empty answer
            self._reply(b"")
            return None
        if len(query) < 12:
            self.path.stats.noncompliant_queries += 1
            self._reply(None)
            return None
        # the NOTIMP of a query without a question goes out in clear
        self.query_reply = self._reply if query[4:6] == b"\x00\x00" else SealedReply(self, state)
        return query
