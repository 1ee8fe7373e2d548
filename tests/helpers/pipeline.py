"""Pipelined DNS over one TCP or DoT connection: send many framed queries, read what comes back."""
from __future__ import annotations

import socket
import ssl
import time

import dns.exception
import dns.message

from tests.helpers.dot import client_context


def framed(qname: str, qid: int, rdtype: str = "A") -> bytes:
    q = dns.message.make_query(qname, rdtype)
    q.id = qid
    wire = q.to_wire()
    return len(wire).to_bytes(2, "big") + wire


def connect(where: tuple[str, int], ca_path: str | None = None,
            timeout: float = 5.0) -> socket.socket:
    """A plain TCP connection, or a DoT one when a CA is given (certificate for dot.test)."""
    raw = socket.create_connection(where, timeout=timeout)
    if ca_path is None:
        return raw
    return client_context(ca_path).wrap_socket(raw, server_hostname="dot.test")


def read_answers(sock: socket.socket, count: int, timeout: float = 10.0
                 ) -> tuple[list, bool]:
    """Up to `count` answers in the order they arrive (dnspython messages, or the raw bytes of
    one that does not parse), and whether the server closed."""
    out: list = []
    buf = b""
    deadline = time.monotonic() + timeout
    closed = False
    while len(out) < count and time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ssl.SSLError, ConnectionError):
            break
        if not chunk:
            closed = True
            break
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
            n = int.from_bytes(buf[:2], "big")
            try:
                out.append(dns.message.from_wire(buf[2:2 + n]))
            except dns.exception.DNSException:
                out.append(buf[2:2 + n])      # kept as bytes: what does not parse

            buf = buf[2 + n:]
    return out, closed


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the server closes the connection (EOF or reset) within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except (ConnectionError, ssl.SSLError, OSError):
            return True
    return False
