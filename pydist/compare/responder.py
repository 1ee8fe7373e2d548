"""Built-in deterministic loopback upstream: stands in for every upstream that is not on loopback.

Each port is one "stand-in" (one pool set of the config); answers depend only on the query
and the stand-in's index, so both sides see the same answers and pool routing stays visible.
"""
from __future__ import annotations

import hashlib
import selectors
import socket
import struct
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

ANSWER_TTL = 300
NEGATIVE_TTL = 60


def build_answer(wire: bytes, index: int) -> bytes | None:
    """The deterministic answer to one query, or None for something that is not a query."""
    try:
        query = dns.message.from_wire(wire)
    except Exception:
        try:  # odd additional records (XPF sent as type 1, ...): answer from the question alone
            query = dns.message.from_wire(wire, question_only=True)
        except Exception:
            return None
    if query.flags & dns.flags.QR or len(query.question) != 1:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    q = query.question[0]
    name = q.name.to_text().lower()
    digest = hashlib.sha256(f"{name}|{index}".encode()).digest()
    soa = dns.rrset.from_text(q.name if name.count(".") <= 2 else q.name.parent(), NEGATIVE_TTL, "IN", "SOA",
                              "ns.responder.invalid. hostmaster.responder.invalid. 1 3600 600 86400 60")
    if name.endswith(".invalid.") or name.startswith("nxdomain."):
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(soa)
    elif name.startswith("servfail."):
        response.set_rcode(dns.rcode.SERVFAIL)
    elif name.startswith("refused."):
        response.set_rcode(dns.rcode.REFUSED)
    elif q.rdtype == dns.rdatatype.A:
        response.answer.append(dns.rrset.from_text(q.name, ANSWER_TTL, "IN", "A",
                                                   f"192.0.2.{index + 1}", f"203.0.113.{digest[0]}"))
    elif q.rdtype == dns.rdatatype.AAAA:
        response.answer.append(dns.rrset.from_text(q.name, ANSWER_TTL, "IN", "AAAA",
                                                   f"2001:db8::{index + 1:x}", f"2001:db8:1::{digest[1]:x}"))
    elif q.rdtype == dns.rdatatype.TXT:
        response.answer.append(dns.rrset.from_text(q.name, ANSWER_TTL, "IN", "TXT",
                                                   f'"stand-in {index}" "{digest[:4].hex()}"'))
    elif q.rdtype == dns.rdatatype.MX:
        response.answer.append(dns.rrset.from_text(q.name, ANSWER_TTL, "IN", "MX", f"10 mx.{name}"))
    else:
        response.authority.append(soa)
    return response.to_wire()


def stop_serving(stop: threading.Event, thread: threading.Thread,
                 sel: selectors.BaseSelector) -> None:
    """End a responder's serving thread, then close every socket it watched."""
    stop.set()
    thread.join(timeout=5)
    for key in list(sel.get_map().values()):
        key.fileobj.close()     # type: ignore[union-attr]
    sel.close()


class Responder:
    """UDP and TCP stand-ins on free loopback ports, served from one background thread."""

    def __init__(self, count: int = 8, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self.ports: list[int] = []
        self.queries = 0
        for index in range(count):
            self.ports.append(self._open_pair(index))
        self._thread = threading.Thread(target=self._run, name="pydist-compare-responder", daemon=True)

    def _open_pair(self, index: int) -> int:
        for _ in range(50):
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((self.host, 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind((self.host, port))
            except OSError:
                tcp.close()
                udp.close()
                continue
            tcp.listen(64)
            tcp.setblocking(False)
            udp.setblocking(False)
            self._sel.register(udp, selectors.EVENT_READ, ("udp", index))
            self._sel.register(tcp, selectors.EVENT_READ, ("listen", index))
            return port
        raise OSError("no free loopback port pair for the responder")

    def start(self) -> "Responder":
        self._thread.start()
        return self

    def close(self) -> None:
        stop_serving(self._stop, self._thread, self._sel)

    def _run(self) -> None:
        buffers: dict[socket.socket, bytearray] = {}
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.1):
                kind, index = key.data
                sock = key.fileobj
                try:
                    if kind == "udp":
                        self._serve_udp(sock, index)
                    elif kind == "listen":
                        conn, _ = sock.accept()
                        conn.setblocking(False)
                        buffers[conn] = bytearray()
                        self._sel.register(conn, selectors.EVENT_READ, ("tcp", index))
                    else:
                        self._serve_tcp(sock, index, buffers)
                except OSError:
                    if kind == "tcp":
                        self._drop(sock, buffers)

    def _serve_udp(self, sock: socket.socket, index: int) -> None:
        while True:
            try:
                wire, peer = sock.recvfrom(65535)
            except BlockingIOError:
                return
            answer = build_answer(wire, index)
            self.queries += 1
            if answer is not None:
                sock.sendto(answer, peer)

    def _serve_tcp(self, conn: socket.socket, index: int, buffers: dict[socket.socket, bytearray]) -> None:
        data = conn.recv(65535)
        if not data:
            self._drop(conn, buffers)
            return
        buf = buffers[conn]
        buf += data
        while len(buf) >= 2:
            size = struct.unpack("!H", buf[:2])[0]
            if len(buf) < 2 + size:
                break
            wire = bytes(buf[2:2 + size])
            del buf[:2 + size]
            answer = build_answer(wire, index)
            self.queries += 1
            if answer is not None:
                conn.setblocking(True)
                conn.sendall(struct.pack("!H", len(answer)) + answer)
                conn.setblocking(False)

    def _drop(self, conn: socket.socket, buffers: dict[socket.socket, bytearray]) -> None:
        buffers.pop(conn, None)
        try:
            self._sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()
