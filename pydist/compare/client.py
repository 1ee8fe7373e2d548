"""Sending one query to one side, over UDP or TCP, from a chosen loopback source."""
from __future__ import annotations

import http.client
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


def recv_exact(sock: socket.socket, size: int) -> bytes:
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


def send_doh(query: Query, target: tuple[str, str, int], timeout: float,
             host: str = "127.0.0.1") -> Exchange:
    """POST the query to a DoH listener over HTTP/1.1; a status other than 200 is no answer
    (a drop, as the comparer counts those; the status is kept as the reason)."""
    scheme, url, port = target
    sent_at = time.time()
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=_dot_context(), source_address=(query.source, 0))
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                          source_address=(query.source, 0))
    try:
        conn.request("POST", url, body=query.wire,
                     headers={"content-type": "application/dns-message"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return Exchange(None, sent_at, f"HTTP status {resp.status}")
        return Exchange(body, sent_at)
    except (socket.timeout, TimeoutError):
        return Exchange(None, sent_at, "timeout")
    except (ConnectionError, OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return Exchange(None, sent_at, f"{type(exc).__name__}")
    finally:
        conn.close()


def send(query: Query, port: int | None, timeout: float, host: str = "127.0.0.1",
         doh: tuple[str, str, int] | None = None) -> Exchange:
    """Send once and wait for the matching answer; a timeout or a closed connection is a drop."""
    sent_at = time.time()
    qid = query.wire[:2]
    if query.https:
        if doh is None:
            return Exchange(None, sent_at, "no listener for this transport")
        return send_doh(query, doh, timeout, host)
    if port is None:
        return Exchange(None, sent_at, "no listener for this transport")
    try:
        if query.tcp:
            with socket.create_connection((host, port), timeout=timeout,
                                          source_address=(query.source, 0)) as raw:
                sock = _dot_context().wrap_socket(raw) if query.tls else raw
                sock.sendall(struct.pack("!H", len(query.wire)) + query.wire)
                size = struct.unpack("!H", recv_exact(sock, 2))[0]
                return Exchange(recv_exact(sock, size), sent_at)
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
