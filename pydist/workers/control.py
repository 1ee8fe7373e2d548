"""The control channel between the supervisor and one worker: a socketpair carrying
length-prefixed messages, each a (kind, payload) pair answered by exactly one reply.

Rules:
1. Only the supervisor asks; a worker only answers, in order, one reply per request. So the
   supervisor may block on a reply without a deadlock: the worker never waits on it.
2. A worker dispatches each request to the handler registered for its kind
   (`WorkerEndpoint.handlers`); an unknown kind or a failing handler answers an error reply
   and the worker goes on. Other features add kinds (hot reload's "reload") by registering a
   handler, and reach every worker with `Supervisor.broadcast(kind, payload)`.
3. Both ends are our own processes (forked from one another), so payloads are pickled.
"""
from __future__ import annotations

import pickle
import select
import socket
import struct
import time
from typing import Any, Callable

_LEN = struct.Struct("!I")
MAX_MESSAGE = 256 * 1024 * 1024    # a ring shipment is bounded well below this
Handler = Callable[[Any], Any]


class ChannelClosed(Exception):
    """The other end is gone (the worker died, or the supervisor did)."""


def encode(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(body)) + body


def send_fully(sock: socket.socket, data: bytes, timeout: float = 30.0) -> None:
    """Write all of `data`, waiting for room: the loops watching these sockets make them
    non-blocking, and a report with ring entries is larger than a socket buffer.

    :raises ChannelClosed: the peer is gone or took no data for `timeout` seconds."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            if not select.select([], [sock], [], timeout)[1]:
                raise ChannelClosed("peer not reading") from None
        except OSError as e:
            raise ChannelClosed(str(e)) from None


class Decoder:
    """Sans-I/O: bytes in, whole messages out."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = _LEN.unpack_from(self.buf)
            if n > MAX_MESSAGE:
                raise ChannelClosed(f"message of {n} bytes")
            if len(self.buf) < 4 + n:
                break
            out.append(pickle.loads(bytes(self.buf[4:4 + n])))
            del self.buf[:4 + n]
        return out


class SupervisorEnd:
    """The supervisor's side of one worker's channel: blocking request/reply with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = Decoder()
        self.pending: list[Any] = []

    def send(self, kind: str, payload: Any = None) -> None:
        send_fully(self.sock, encode((kind, payload)))

    def reply(self, timeout: float) -> Any:
        """The next reply; ChannelClosed when the worker is gone or silent past `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise ChannelClosed("no reply")
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError as e:
                raise ChannelClosed(str(e)) from None
            if not data:
                raise ChannelClosed("closed")
            self.pending.extend(self.decoder.feed(data))
        ok, value = self.pending.pop(0)
        if not ok:
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        self.sock.close()


class WorkerEndpoint:
    """The worker's side: read on its loop, dispatch to the handler registry, reply."""

    def __init__(self, sock: socket.socket, on_closed: Callable[[], None]) -> None:
        self.sock = sock
        self.decoder = Decoder()
        self.handlers: dict[str, Handler] = {}
        self.on_closed = on_closed

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def readable(self) -> None:
        try:
            data = self.sock.recv(1 << 20)
            messages = self.decoder.feed(data) if data else None
        except BlockingIOError:
            return
        except (OSError, ChannelClosed):
            messages = None
        try:
            for kind, payload in messages or ():
                send_fully(self.sock, encode(self.dispatch(kind, payload)))
        except ChannelClosed:
            messages = None
        if messages is None:
            self.on_closed()

    def dispatch(self, kind: str, payload: Any) -> tuple[bool, Any]:
        handler = self.handlers.get(kind)
        if handler is None:
            return False, f"unknown control message '{kind}'"
        try:
            return True, handler(payload)
        except Exception as e:  # noqa: BLE001 -- one bad message must not end the worker
            return False, f"{type(e).__name__}: {e}"
