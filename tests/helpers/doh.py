"""DNS over HTTPS helpers for tests: requests with httpx (HTTP/1.1 or HTTP/2, HTTPS or plain
HTTP with prior knowledge), raw socket exchanges for bad input, answers compared without TTLs."""
from __future__ import annotations

import base64
import re
import socket
import ssl
from dataclasses import dataclass

import dns.message
import httpx


@dataclass
class Reply:
    """One HTTP answer, normalised so two servers can be compared (Date dropped, ages masked)."""
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def summary(self) -> tuple:
        """Status, headers and body with what legitimately varies (TTLs, dates) masked."""
        body: object = self.body
        if ("content-type", "application/dns-message") in self.headers:
            try:
                msg = dns.message.from_wire(self.body)
                body = (msg.id, msg.flags, msg.rcode(), sorted(
                    (str(rr.name), rr.rdtype, sorted(str(r) for r in rr))
                    for rr in msg.answer), len(msg.additional), msg.edns)
            except Exception:
                pass
        return self.status, self.headers, body


def b64(wire: bytes) -> str:
    return base64.urlsafe_b64encode(wire).decode().rstrip("=")


def query_wire(qname: str, rdtype: str = "A", edns: bool = False, qid: int = 0) -> bytes:
    q = dns.message.make_query(qname, rdtype, use_edns=0 if edns else False)
    q.id = qid
    return q.to_wire()


def client(http2: bool, ca: str | None = None, plain: bool = False) -> httpx.Client:
    """HTTP/2 over plain HTTP is prior knowledge (h2c without upgrade), as curl's."""
    if plain and http2:
        return httpx.Client(http1=False, http2=True, timeout=5)
    return httpx.Client(http2=http2, verify=ssl.create_default_context(cafile=ca) if ca else
                        False, timeout=5)


def do(c: httpx.Client, base: str, method: str, path: str, body: bytes | None = None,
       headers: dict[str, str] | None = None) -> Reply:
    r = c.request(method, base + path, content=body, headers=headers)
    kept = [(k.lower(), re.sub(r"max-age=\d+", "max-age=N", v)) for k, v in r.headers.items()
            if k.lower() not in ("date",)]
    return Reply(r.status_code, kept, r.content)


def raw_exchange(where: tuple[str, int], data: bytes, timeout: float = 3.0,
                 tls: bool = False, alpn: str = "h2") -> bytes:
    """Send bytes, read until the server closes or goes quiet; b"<timeout>" marks the latter."""
    s = socket.create_connection(where, timeout=timeout)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols([alpn])
        s = ctx.wrap_socket(s)
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        out += b"<timeout>"
    except (ConnectionResetError, ssl.SSLError):
        out += b"<reset>"
    finally:
        s.close()
    return re.sub(rb"Date: [^\r]*", b"Date: X", out)
