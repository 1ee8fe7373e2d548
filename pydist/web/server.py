"""The web server on the engine's loop: an asyncio Protocol per connection driving h11.

h11 (sans-I/O HTTP/1.1) rather than aiohttp: dnsdist answers one request per connection
with its own headers, and h11 leaves every byte, limit and timer to us, so a hostile client
is cut off by rules written here, on the same loop as DNS, with no framework in between.

Limits (why: a web client must never stall DNS or exhaust memory):
* ACL checked on accept (default 127.0.0.1/32, ::1/128); refused connections are closed.
* setWebserverConfig{maxConcurrentConnections} (default 100): extra connections are closed.
* request head limited to MAX_HEAD bytes (431), body to MAX_BODY (413);
* the whole request must arrive within REQUEST_TIMEOUT seconds (slowloris), and the answer
  must drain within the same budget; then the connection is closed.
"""
from __future__ import annotations

import asyncio
import http
import socket
from collections.abc import Callable
from typing import Any

import h11

from pydist.dns.netmask import family_of, format_address
from pydist.web.router import Request, Response, Router
from pydist.web.topoffenders import TopOffenders

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
REQUEST_TIMEOUT = 5.0
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}   # "202 Accepted", as dnsdist


def bind_web_socket(host: str, port: int) -> socket.socket:
    """Bound and listening, as webserver() does while the config runs (SO_REUSEADDR)."""
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(128)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


class WebConnection(asyncio.Protocol):
    """One client: read one request (bounded), answer it, close."""

    def __init__(self, server: WebServer) -> None:
        # global state
        self.server = server
        # per-connection state
        self.transport: Any = None
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.peer = ""
        self.timer: asyncio.TimerHandle | None = None
        self.counted = False
        self.done = False
        # per-request state
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.head = bytearray()   # raw bytes until the request line and headers are parsed

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        addr = transport.get_extra_info("peername") or ("", 0)
        host = addr[0]
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]
        self.peer = format_address(host, addr[1]) if host else ""
        srv = self.server
        if not srv.settings.acl.match(host) or srv.active >= srv.settings.max_connections:
            srv.refused += 1
            self.done = True
            transport.abort()
            return
        srv.active += 1
        self.counted = True
        self.timer = srv.loop.call_later(REQUEST_TIMEOUT, self._timeout)

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        if self.request is None:
            self.head += data
        try:
            self.h11.receive_data(data)
            self._events()
        except h11.RemoteProtocolError as e:
            if self.request is None and "Host" in str(e) and self._retry_with_host():
                return
            self._send(Response(e.error_status_hint or 400))
        except Exception as e:  # a bug must not take the loop down: answer 500, log once
            self.server.log(f"Error while handling an HTTP request from {self.peer}: {e!r}")
            self._send(Response(500))

    def _retry_with_host(self) -> bool:
        """dnsdist answers HTTP/1.1 requests without Host (scripts send them): so do we."""
        line_end = self.head.find(b"\r\n")
        if line_end < 0 or b"\nhost:" in self.head.lower():
            return False
        cut = line_end + 2
        head = bytes(self.head[:cut]) + b"Host: localhost\r\n" + bytes(self.head[cut:])
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.head = bytearray()
        self.data_received(head)
        return True

    def _events(self) -> None:
        while not self.done:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.request = event
                self.head = bytearray()
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > MAX_BODY:
                    self._send(Response(413))
            elif isinstance(event, h11.EndOfMessage):
                self._answer()
            elif isinstance(event, h11.ConnectionClosed):
                self._close()

    def _answer(self) -> None:
        ev = self.request
        assert ev is not None
        headers = {}
        for name, value in ev.headers:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        req = Request(ev.method.decode("latin-1"), ev.target.decode("latin-1"), headers,
                      bytes(self.body), self.peer, ev.http_version.decode("latin-1"))
        checks = self.server.router.slow_checks(req)
        if not checks:
            self._send(self.server.router.handle(req))
            return
        # scrypt releases the GIL: hashed credentials are checked in a worker thread
        fut = self.server.loop.run_in_executor(None, _compute, checks)
        fut.add_done_callback(lambda f: self._answer_checked(req, f))

    def _answer_checked(self, req: Request, fut: asyncio.Future[dict]) -> None:
        if self.done or fut.cancelled():
            return
        try:
            req.verdicts = fut.result()
        except Exception:  # never expected; the router then checks on the loop itself
            req.verdicts = {}
        try:
            self._send(self.server.router.handle(req))
        except Exception as e:  # as in data_received: a bug answers 500, the loop goes on
            self.server.log(f"Error while handling an HTTP request from {self.peer}: {e!r}")
            self._send(Response(500))

    def _send(self, resp: Response) -> None:
        """Write the response (chunked for HTTP/1.1 clients, as dnsdist) and close."""
        if self.done:
            return
        self.done = True
        try:
            if self.h11.their_state is h11.ERROR or self.request is None:
                self.transport.write(_raw_response(resp))
            else:
                hdrs = [(k.encode("latin-1"), v.encode("latin-1", "replace"))
                        for k, v in resp.headers]
                data = self.h11.send(h11.Response(status_code=resp.status, headers=hdrs,
                                                  reason=_REASONS.get(resp.status, b"")))
                if resp.body:
                    data += self.h11.send(h11.Data(data=resp.body))
                data += self.h11.send(h11.EndOfMessage())
                if self.request.http_version == b"1.0":  # h11 always says 1.1; dnsdist echoes
                    data = b"HTTP/1.0" + data[8:]
                self.transport.write(data)
        except h11.LocalProtocolError:
            self.transport.write(_raw_response(resp))
        self.transport.close()

    def _timeout(self) -> None:
        self.server.timeouts += 1
        self._close()

    def _close(self) -> None:
        self.done = True
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        if self.counted:
            self.counted = False
            self.server.active -= 1


def _compute(checks: list) -> dict:
    """In a worker thread: the result of each (credential, supplied) comparison."""
    return {(id(cred), supplied): cred.compute(supplied) for cred, supplied in checks}


def _raw_response(resp: Response) -> bytes:
    """For requests h11 could not parse: a plain HTTP/1.0 answer with a length."""
    head = [f"HTTP/1.0 {resp.status} {_REASONS.get(resp.status, b'').decode()}"]
    head += [f"{k}: {v}" for k, v in resp.headers if k.lower() != "connection"]
    head += ["Connection: close", f"Content-Length: {len(resp.body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + resp.body


class WebServer:
    """The listening socket webserver() bound, served on the engine's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reg: Any, settings: Any,
                 log: Callable[[str], None]) -> None:
        self.loop = loop
        self.settings = settings
        self.log = log
        self.router = Router(reg, settings, log)
        self.top = TopOffenders(getattr(reg, "dynblocks", None))
        self.router.top = self.top
        self.active = 0
        self.refused = 0
        self.timeouts = 0
        self.server: asyncio.AbstractServer | None = None

    def observe(self, reg: Any) -> None:
        """A hot reload replaced the registry (pydist/reload): serve the new one, with its
        web settings, on the same socket."""
        self.settings = reg.web
        self.router.reg = reg
        self.router.settings = reg.web
        self.top.dynblocks = reg.dynblocks

    async def start(self, sock: socket.socket) -> None:
        self.server = await self.loop.create_server(lambda: WebConnection(self), sock=sock)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def start_web_server(loop: asyncio.AbstractEventLoop, reg: Any, previous: WebServer | None,
                     hooks: list[Callable[[], None]] | None = None) -> WebServer | None:
    """The engine's hook: serve reg.web.sock (replacing an earlier server) and log as dnsdist;
    `hooks`: the engine's one-second tick, which ranks the dyn-block offenders."""
    web = reg.web
    sock, web.sock = web.sock, None
    if sock is None:
        return previous
    if previous is not None:
        previous.close()
    server = WebServer(loop, reg, web, reg.log)
    loop.create_task(server.start(sock))
    if hooks is not None:
        if previous is not None and previous.top.tick in hooks:
            hooks.remove(previous.top.tick)
        hooks.append(server.top.tick)
    host, port = sock.getsockname()[:2]
    where = format_address(*web.address) if web.address else format_address(host, port)
    reg.log(f"Webserver launched on {where}")
    if web.password is None or web.password.empty:
        reg.log(f"Webserver launched on {where} without a password set!")
    return server
