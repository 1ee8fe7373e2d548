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

import time
from typing import Any

from pydist.dnscrypt.query import DNSCryptQuery, read_packet
from pydist.frontend.pktinfo import ANCILLARY_SIZE, LocalUDPSocket, destination
from pydist.frontend.tcp import TCPClientConnection
from pydist.frontend.udp import MAX_UDP_QUERY, UDP_BUDGET, UDPFrontend, read_proxied, sendto
from pydist.transport import Transport
from pydist.verdict import QueryOrigin


class DNSCryptUDPSocket:
    """What one DNSCrypt UDP query is answered through: encrypts, then sends."""

    __slots__ = ("query", "sock")

    def __init__(self, sock: Any, query: DNSCryptQuery) -> None:
        self.sock, self.query = sock, query

    def sendto(self, data: bytes, client: Any) -> int:
        packet = self.query.encrypt_response(data, False)
        return 0 if packet is None else self.sock.sendto(packet, client)


class DNSCryptUDPFrontend(UDPFrontend):
    """A DNSCrypt UDP listener: the query opened here, then the query step as any other; its
    answers (at once or from a backend, through `act` and the sink) sealed by the socket."""

    batched = False     # each answer is sealed for its query: sent one by one

    def readable(self) -> None:
        """Drain the listener (bounded per wake-up, as the plain drain)."""
        path, fe, sock = self.path, self.fe, self.sock
        stats = path.stats
        acl = path.reg.acl
        proxy_acl = path.proxy_acl
        ctx = fe.decl.dnscrypt
        now = time.time()
        for _ in range(UDP_BUDGET):
            local = values = None
            try:
                if self.pktinfo:
                    data, anc, _, addr = sock.recvmsg(MAX_UDP_QUERY + 1, ANCILLARY_SIZE)
                    found = destination(anc, fe.decl.port)
                    out: Any = sock
                    if found is not None:
                        out, local = LocalUDPSocket(sock, *found), found[1]
                else:
                    data, addr = sock.recvfrom(MAX_UDP_QUERY + 1)
                    out = sock
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if proxy_acl is not None and proxy_acl.match(addr[0]):
                proxied = read_proxied(path, data, addr, fe, out)  # header first, then DNSCrypt
                if proxied is None:
                    continue
                data, addr, out = proxied
                local, values = out.local, out.values
            elif len(data) < 12 or len(data) > MAX_UDP_QUERY:
                stats.noncompliant_queries += 1
                continue
            elif not acl.match(addr[0]):
                stats.acl_drops += 1
                continue
            else:
                path.count_query(fe)
            self.opened(data, addr, out, local, values, ctx, now)

    def opened(self, data: bytes, addr: Any, out: Any, local: Any, values: Any, ctx: Any,
               now: float) -> None:
        """One datagram that passed the checks: a certificate request answered in clear, or
        a query opened and run through the query step."""
        read = read_packet(ctx, data, False, now)
        if read is None:
            return
        query, state = read
        if state is None:                       # the certificate answer, in clear
            sendto(out, query, addr)
        elif len(query) < 12:
            self.path.stats.noncompliant_queries += 1
        elif self.path.accept_query(query, addr, self.fe, now):
            # the NOTIMP of a query without a question goes out in clear
            sink = out if query[4:6] == b"\x00\x00" else DNSCryptUDPSocket(out, state)
            origin = None if values is None else QueryOrigin("", None, values)
            self.act(self.path.query_step(query, addr, local, Transport.DNSCRYPT_UDP, self.fe,
                                          now, origin), addr, sink)


class SealedSink:
    """How one DNSCrypt TCP query is answered (pydist/frontend/sink.py): encrypted for it, then
    framed by the connection (queries may be in flight together: each has its own)."""

    __slots__ = ("conn", "query")

    def __init__(self, conn: "DNSCryptTCPConnection", query: DNSCryptQuery) -> None:
        self.conn, self.query = conn, query

    def answer(self, st: Any, resp: bytes, delay_ms: int) -> None:
        self.conn._reply(self.query.encrypt_response(resp, True))

    def answer_part(self, st: Any, resp: bytes) -> None:
        self.conn._reply(self.query.encrypt_response(resp, True), True)

    def end(self, st: Any) -> None:
        self.conn._reply(None)

    def timed_out(self, st: Any) -> None:
        self.conn._reply(None)


class DNSCryptTCPConnection(TCPClientConnection):
    """A DNSCrypt TCP client: the TCP frontend, with each query opened and its answer sealed."""

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
        self.query_sink = self if query[4:6] == b"\x00\x00" else SealedSink(self, state)
        return query

