"""Sending one query to one side, over UDP or TCP, from a chosen loopback source."""
from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass

from pydist.compare.traffic import Query


@dataclass
class Exchange:
    """What one side did with one query: its answer (None = dropped) and when it was sent."""

    answer: bytes | None
    sent_at: float
    error: str = ""


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _dot_context() -> ssl.SSLContext:
    """The comparer talks to its own loopback listeners: no certificate checks."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def send(query: Query, port: int | None, timeout: float, host: str = "127.0.0.1") -> Exchange:
    """Send once and wait for the matching answer; a timeout or a closed connection is a drop."""
    sent_at = time.time()
    qid = query.wire[:2]
    if port is None:
        return Exchange(None, sent_at, "no listener for this transport")
    try:
        if query.tcp:
            with socket.create_connection((host, port), timeout=timeout,
                                          source_address=(query.source, 0)) as raw:
                sock = _dot_context().wrap_socket(raw) if query.tls else raw
                sock.sendall(struct.pack("!H", len(query.wire)) + query.wire)
                size = struct.unpack("!H", _recv_exact(sock, 2))[0]
                return Exchange(_recv_exact(sock, size), sent_at)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((query.source, 0))
            sock.settimeout(timeout)
            sock.sendto(query.wire, (host, port))
            deadline = time.monotonic() + timeout
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                answer = sock.recv(65535)
                if answer[:2] == qid:
                    return Exchange(answer, sent_at)
    except (socket.timeout, TimeoutError):
        return Exchange(None, sent_at, "timeout")
    except (ConnectionError, OSError, ssl.SSLError) as exc:
        return Exchange(None, sent_at, str(exc))
