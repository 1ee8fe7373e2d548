"""A loopback DNS-over-HTTPS upstream: stands in for `newServer{dohPath=...}` servers.

HTTP/2 over TLS (ALPN h2), or cleartext HTTP/2 (prior knowledge) when the first byte of a
connection is not a TLS handshake, as a `dohPath` server without `tls` speaks it. A proxy
protocol v2 header is read wherever it comes (before TLS, or inside it before the HTTP/2
preface) and kept with the requests of its connection.

Each request is handed to a handler that returns what to answer, including ways of answering
badly (the tests' broken backends): a non-200 status, another content type, a body cut short
of its content-length, garbage instead of HTTP/2 frames, a reset stream, silence.
One thread accepts; each connection has its own thread, so a silent stream stalls nothing else.
"""
from __future__ import annotations

import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from pydist.compare.client import recv_exact
from pydist.compare.responder import build_answer, stop_serving

PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
DNS_MESSAGE = "application/dns-message"
# not HTTP/2: read as a frame header, it announces a 4.7 MB frame (a connection error)
GARBAGE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@dataclass
class DoHRequest:
    """One request as received: its headers in order, its body, and its connection's facts."""
    headers: list[tuple[str, str]]
    body: bytes
    tls: bool
    proxy: bytes            # the proxy protocol header its connection began with, or b""
    connection: int         # 1 for the first connection this responder accepted, ...
    index: int              # which of the responder's ports it came in on

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass
class DoHReply:
    """What to answer. `action`: "answer" (normally, or with another status or content
    type), "truncate" (the body cut short of the announced content-length), "garbage" (bytes
    that are not HTTP/2 frames), "reset" (RST_STREAM), "close" (the connection dropped),
    "hang" (nothing, ever)."""
    status: int = 200
    body: bytes = b""
    content_type: str | None = DNS_MESSAGE
    action: str = "answer"
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[DoHRequest], DoHReply]


def stand_in_answer(req: DoHRequest) -> DoHReply:
    """The comparer's DoH stand-in: the plain responder's deterministic answer to the body (a
    body that is no query gets a 400, as a DoH server answers it)."""
    answer = build_answer(req.body, req.index)
    return DoHReply(body=answer) if answer is not None else DoHReply(status=400, content_type=None)


class DoHResponder:
    """`count` DoH stand-ins on free loopback ports (the handler sees each request's index)."""

    def __init__(self, handler: Handler, cert_path: str, key_path: str, count: int = 1,
                 host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.host = host
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert_path, key_path)
        self.ctx.set_alpn_protocols(["h2"])
        self.ctx.sni_callback = self._note_sni
        self.server_names: list[str | None] = []      # the SNI of each TLS handshake
        self.requests: list[DoHRequest] = []
        self.connections = 0
        self.lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self.ports: list[int] = []
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        for index in range(count):
            listener = socket.socket(fam, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, 0))
            listener.listen(64)
            listener.setblocking(False)
            self._sel.register(listener, selectors.EVENT_READ, index)
            self.ports.append(listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, name="doh-responder",
                                        daemon=True)

    @property
    def port(self) -> int:
        return self.ports[0]

    def address(self, index: int = 0) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.ports[index]}"

    def start(self) -> DoHResponder:
        self._thread.start()
        return self

    def close(self) -> None:
        stop_serving(self._stop, self._thread, self._sel)
        with self.lock:
            conns = list(self._open)
        for conn in conns:
            _close(conn)

    def __enter__(self) -> DoHResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _note_sni(self, sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        with self.lock:
            self.server_names.append(name)

    def received(self) -> list[DoHRequest]:
        with self.lock:
            return list(self.requests)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.1):
                try:
                    conn, _ = key.fileobj.accept()      # type: ignore[union-attr]
                except OSError:
                    continue
                with self.lock:
                    self.connections += 1
                    number = self.connections
                    self._open.add(conn)
                threading.Thread(target=self._serve, args=(conn, number, key.data),
                                 daemon=True).start()

    def _serve(self, raw: socket.socket, number: int, index: int) -> None:
        sock: socket.socket = raw
        try:
            raw.settimeout(30)
            proxy = _read_proxy_header(raw)
            first = raw.recv(1, socket.MSG_PEEK)
            tls = first == b"\x16"
            ahead = b""
            if tls:
                sock = self.ctx.wrap_socket(raw, server_side=True)
                inner, ahead = _read_tls_proxy_header(sock)
                proxy = proxy or inner
            _Session(self, sock, number, index, tls, proxy).run(ahead)
        except (OSError, ssl.SSLError, h2.exceptions.H2Error, ValueError):
            pass        # a client gone or broken: this connection only
        finally:
            with self.lock:
                self._open.discard(raw)
            _close(sock)


class _Session:
    """One HTTP/2 connection, server side."""

    def __init__(self, owner: DoHResponder, sock: socket.socket, number: int, index: int,
                 tls: bool, proxy: bytes) -> None:
        self.owner, self.sock, self.number, self.index = owner, sock, number, index
        self.tls, self.proxy = tls, proxy
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.headers: dict[int, list[tuple[str, str]]] = {}
        self.bodies: dict[int, bytearray] = {}

    def run(self, ahead: bytes) -> None:
        """Serve until the client closes; `ahead`: bytes already read from the stream."""
        self.h2.initiate_connection()
        self._flush()
        data = ahead
        while True:
            data = data or self.sock.recv(65535)
            if not data:
                return
            for event in self.h2.receive_data(data):
                if self._event(event) is False:
                    return
            self._flush()
            data = b""

    def _flush(self) -> None:
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def _event(self, event: h2.events.Event) -> bool:
        if isinstance(event, h2.events.RequestReceived):
            self.headers[event.stream_id] = list(event.headers)   # type: ignore[arg-type]
            self.bodies[event.stream_id] = bytearray()
        elif isinstance(event, h2.events.DataReceived):
            self.bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            return self._request(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            return False
        return True

    def _request(self, stream_id: int) -> bool:
        req = DoHRequest(self.headers.pop(stream_id, []), bytes(self.bodies.pop(stream_id, b"")),
                         self.tls, self.proxy, self.number, self.index)
        with self.owner.lock:
            self.owner.requests.append(req)
        reply = self.owner.handler(req)
        if reply.action == "hang":
            return True
        if reply.action == "close":
            return False
        if reply.action == "garbage":
            self._flush()
            self.sock.sendall(GARBAGE)
            return True
        if reply.action == "reset":
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return True
        headers = [(":status", str(reply.status))]
        if reply.content_type is not None:
            headers.append(("content-type", reply.content_type))
        body = reply.body
        headers.append(("content-length", str(len(body))))
        headers += reply.extra_headers
        if reply.action == "truncate":
            body = body[:len(body) // 2]
        self.h2.send_headers(stream_id, headers, end_stream=not body and reply.action != "truncate")
        if body or reply.action == "truncate":
            self.h2.send_data(stream_id, body, end_stream=True)
        return True


def _read_proxy_header(sock: socket.socket) -> bytes:
    """A proxy protocol v2 header at the start of the cleartext stream, consumed; b"" when
    there is none (peeked, so nothing else is taken)."""
    head = sock.recv(16, socket.MSG_PEEK)
    while head and head.startswith(PROXY_SIGNATURE[:len(head)]) and len(head) < 16:
        head = sock.recv(16, socket.MSG_PEEK)
    if len(head) < 16 or not head.startswith(PROXY_SIGNATURE):
        return b""
    return recv_exact(sock, 16 + int.from_bytes(head[14:16], "big"))


def _read_tls_proxy_header(sock: socket.socket) -> tuple[bytes, bytes]:
    """Inside TLS the client's first bytes are the HTTP/2 preface or a proxy header, both at
    least 16 bytes long: reading 16 decides. Returns (header, bytes read past it)."""
    head = recv_exact(sock, 16)
    if not head.startswith(PROXY_SIGNATURE):
        return b"", head
    return head + recv_exact(sock, int.from_bytes(head[14:16], "big")), b""


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
