"""A loopback DNS backend the tests control: answers, stays silent, SERVFAILs, counts queries."""
from __future__ import annotations

import socket
import threading
from typing import Callable

import dnslib

from pydist.dns.ecs import OPT_ECS, locate_opt
from pydist.dns.proxyprotocol import SIGNATURE, parse_header

Handler = Callable[[dnslib.DNSRecord, str], "dnslib.DNSRecord | bytes | list | None"]
"""An answer, raw answer bytes (sent as they are), or over TCP a list of messages (a zone
transfer's), or None for silence."""


def default_handler(ttl: int = 300, address: str = "192.0.2.1") -> Handler:
    """A for everything, NXDOMAIN with SOA below nx.test., NODATA for other types."""
    def handle(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord | None:
        r = q.reply()
        qn = str(q.q.qname)
        if qn.lower().endswith("nx.test."):
            r.header.rcode = 3
            r.add_auth(dnslib.RR("test.", dnslib.QTYPE.SOA, ttl=ttl,
                                 rdata=dnslib.SOA("ns.test.", "host.test.", (1, 2, 3, 4, 60))))
        elif q.q.qtype == dnslib.QTYPE.A:
            r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.A, ttl=ttl, rdata=dnslib.A(address)))
        elif q.q.qtype == dnslib.QTYPE.TXT:
            r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.TXT, ttl=ttl,
                                   rdata=dnslib.TXT(transport)))
        return r
    return handle


class Responder:
    """UDP and TCP on one loopback port, in a thread; `queries` lists what it received."""

    def __init__(self, handler: Handler | None = None, host: str = "127.0.0.1") -> None:
        self.handler = handler or default_handler()
        self.queries: list[tuple[str, str, int]] = []
        self.silent = False
        self.last_udp_peer: tuple | None = None  # where the last UDP query came from
        self.tcp_connections = 0                 # TCP connections accepted (reuse tests)
        # (transport, proxy protocol header fields or None, the DNS query bytes) as received
        self.raw: list[tuple[str, dict | None, bytes]] = []
        self.echo_opt = False     # answer with the query's OPT RR, ECS scope = source prefix
        self.ecs_scope: int | None = None   # ... or this scope
        self.udp, self.tcp = _bind_pair(host)
        self.port = self.udp.getsockname()[1]
        self.host = host
        self._stop = False
        self.lock = threading.Lock()
        threading.Thread(target=self._udp_loop, daemon=True).start()
        threading.Thread(target=self._tcp_loop, daemon=True).start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _answer(self, data: bytes, transport: str, proxy: dict | None = None
                ) -> bytes | list[bytes] | None:
        with self.lock:
            self.raw.append((transport, proxy, data))
        try:
            q = dnslib.DNSRecord.parse(data)
        except Exception:
            return None
        with self.lock:
            self.queries.append((str(q.q.qname), transport, q.header.id))
        if self.silent:
            return None
        r = self.handler(q, transport)
        if r is None or isinstance(r, bytes):
            return r
        if isinstance(r, list):
            return [m if isinstance(m, bytes) else m.pack() for m in r]
        if not self.echo_opt:
            return r.pack()
        r.additional = [rr for rr in r.ar if rr.rtype != dnslib.QTYPE.OPT]
        wire = bytearray(r.pack())
        start, end = locate_opt(data)
        if start >= 0:
            wire[10:12] = (len(r.ar) + 1).to_bytes(2, "big")
            wire += _scoped(data[start:end], self.ecs_scope)
        return bytes(wire)

    def proxied(self, transport: str = "") -> list[tuple[str, dict | None, bytes]]:
        """What came with a proxy protocol header (health checks' LOCAL ones included)."""
        with self.lock:
            return [r for r in self.raw if r[1] is not None and transport in ("", r[0])]

    def _udp_loop(self) -> None:
        while not self._stop:
            try:
                data, addr = self.udp.recvfrom(65535)
            except OSError:
                return
            self.last_udp_peer = addr
            proxy = None
            if data.startswith(SIGNATURE):
                parsed = parse_header(data)
                if parsed is None:
                    continue
                proxy, n = parsed
                data = data[n:]
            resp = self._answer(data, "udp", proxy)
            if isinstance(resp, list):
                resp = resp[0]
            if resp is not None:
                try:
                    self.udp.sendto(resp, addr)
                except OSError:
                    pass

    def _tcp_loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            self.tcp_connections += 1
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn: socket.socket) -> None:
        proxy = None
        first = True
        with conn:
            while True:
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                if first and head == SIGNATURE[:2]:   # a proxy protocol header opens the stream
                    rest = _recv_exact(conn, 14)
                    if rest is None:
                        return
                    body = _recv_exact(conn, int.from_bytes(rest[12:14], "big"))
                    parsed = parse_header(head + rest + (body or b""))
                    if parsed is None:
                        return
                    proxy = parsed[0]
                    first = False
                    continue
                first = False
                data = _recv_exact(conn, int.from_bytes(head, "big"))
                if data is None:
                    return
                resp = self._answer(data, "tcp", proxy)
                for message in resp if isinstance(resp, list) else [resp]:
                    if message is not None:
                        conn.sendall(len(message).to_bytes(2, "big") + message)

    def count(self, name_suffix: str = "") -> int:
        with self.lock:
            return sum(1 for n, _, _ in self.queries if n.lower().endswith(name_suffix.lower()))

    def close(self) -> None:
        """Stop and free the port now (shutdown wakes the blocked threads, so the port is
        released and the kernel answers ICMP port unreachable, as for a killed backend)."""
        self._stop = True
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _bind_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on the same free port (retried: the TCP port may be taken)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        udp = socket.socket(fam, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        tcp = socket.socket(fam, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(64)
        return udp, tcp
    raise OSError("no free UDP+TCP port pair")


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        try:
            chunk = conn.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def _scoped(opt_rr: bytes, scope: int | None = None) -> bytes:
    """An OPT RR (root owner) whose ECS option, if any, gets scope = source prefix (or scope)."""
    out = bytearray(opt_rr)
    pos = 11
    while pos + 4 <= len(out):
        code = int.from_bytes(out[pos:pos + 2], "big")
        ln = int.from_bytes(out[pos + 2:pos + 4], "big")
        if code == OPT_ECS and ln >= 4:
            out[pos + 7] = out[pos + 6] if scope is None else scope
        pos += 4 + ln
    return bytes(out)
