"""The console server (dnsdist's ``controlSocket``), an asyncio Protocol on the shared loop.

Per connection, as dnsdist 1.7.3 (``controlThread``/``controlClientThread``):

1. On accept, in order: a valid key is configured, the client is in the console
   ACL, fewer than the maximum connections are open; else close at once.
   Then log ``Got control connection from <ip:port>``.
2. States: NONCE (read the client's 24 bytes, answer ours) -> LENGTH <-> BODY.
   A zero length is answered by a zero length; a length above the maximum
   message size ends the connection like an EOF between messages.
3. A body is decrypted, run through ``execute`` and answered by one frame.
4. EOF between messages (or inside a length prefix) logs ``Closed control
   connection``; EOF inside the nonce or a body, a decrypt failure or any other
   exception logs ``Got an exception in client connection from <addr>: <why>``.

A client that never speaks only holds a connection slot, as in dnsdist: there is
no timeout. Nothing here blocks the loop; ``execute`` is expected to be quick.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from pydist.console import protocol

EOF_MESSAGE = "EOF while reading message"

_NONCE, _LENGTH, _BODY, _DONE = range(4)


def format_peer(peer: Any) -> str:
    """ComboAddress::toStringWithPort: ``1.2.3.4:53`` or ``[::1]:53``."""
    if not peer:
        return "0.0.0.0:0"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ConsoleConnections:
    """How many console connections are open (setConsoleMaximumConcurrentConnections)."""

    def __init__(self) -> None:
        self.count = 0


class ConsoleServer(asyncio.Protocol):
    """One console connection; built by the factory ``serve_console`` hands to the loop."""

    def __init__(
        self,
        *,
        execute: Callable[[str], str],
        get_key: Callable[[], bytes | None],
        acl_allows: Callable[[str], bool],
        max_connections: Callable[[], int],
        log_connections: Callable[[], bool],
        max_msg_size: Callable[[], int],
        log: Callable[[str], None],
        verbose: Callable[[], bool] = lambda: False,
        connections: ConsoleConnections | None = None,
    ) -> None:
        # Global state
        self._execute = execute
        self._get_key = get_key
        self._acl_allows = acl_allows
        self._max_connections = max_connections
        self._log_connections = log_connections
        self._max_msg_size = max_msg_size
        self._log = log
        self._verbose = verbose
        self._connections = connections if connections is not None else ConsoleConnections()
        # Per-connection state
        self._transport: asyncio.Transport | None = None
        self._client = ""
        self._counted = False
        self._state = _NONCE
        self._buffer = bytearray()
        self._need = protocol.NONCE_SIZE
        self._ours = protocol.new_nonce()
        self._session: protocol.ConsoleSession | None = None

    # -- asyncio callbacks ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  (uvloop transports are not asyncio.Transport subclasses)
        peer = transport.get_extra_info("peername")
        self._client = format_peer(peer)
        if not protocol.is_valid_key(self._get_key()):
            self._refuse(
                f"Control connection from {self._client} dropped because we don't have a "
                "valid key configured, please configure one using setKey()"
            )
            return
        if not self._acl_allows(peer[0] if peer else ""):
            self._refuse(f"Control connection from {self._client} dropped because of ACL")
            return
        if self._connections.count >= self._max_connections():
            self._state = _DONE
            self._log("Control connection died: Too many concurrent console connections")
            transport.abort()
            return
        self._connections.count += 1
        self._counted = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if self._log_connections():
            self._log(f"Got control connection from {self._client}")

    def data_received(self, data: bytes) -> None:
        if self._state == _DONE:
            return
        self._buffer += data
        try:
            self._process()
        except Exception as exc:  # as dnsdist: log the exception and drop the client
            self._fail(str(exc))

    def eof_received(self) -> bool | None:
        self._end_of_input(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_of_input(exc)
        if self._counted:
            self._counted = False
            self._connections.count -= 1

    def pause_writing(self) -> None:
        # A client that does not read its replies must not make us buffer without bound.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and self._state != _DONE:
            self._transport.resume_reading()

    # -- protocol ---------------------------------------------------------------

    def _process(self) -> None:
        transport = self._transport
        assert transport is not None
        while self._state != _DONE and len(self._buffer) >= self._need:
            chunk = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            if self._state == _NONCE:
                transport.write(self._ours)
                self._session = protocol.ConsoleSession(self._ours, chunk)
                self._expect(_LENGTH, protocol.LENGTH_SIZE)
            elif self._state == _LENGTH:
                length = protocol.decode_length(chunk)
                if length > self._max_msg_size():
                    self._close_quietly()
                elif length == 0:
                    transport.write(protocol.encode_length(0))
                else:
                    self._expect(_BODY, length)
            else:
                self._handle_message(chunk)
                self._expect(_LENGTH, protocol.LENGTH_SIZE)

    def _handle_message(self, ciphertext: bytes) -> None:
        session = self._session
        transport = self._transport
        assert session is not None and transport is not None
        line = session.decrypt(self._key(), ciphertext).decode("utf-8", "surrogateescape")
        response = self._execute(line)
        reply = session.encrypt(self._key(), response.encode("utf-8", "surrogateescape"))
        transport.write(protocol.frame(reply))

    def _key(self) -> bytes:
        # Read at each use: setKey() on the console changes the key mid-connection.
        return self._get_key() or b""

    def _expect(self, state: int, need: int) -> None:
        self._state = state
        self._need = need

    def _end_of_input(self, exc: Exception | None) -> None:
        if self._state == _DONE:
            return
        if self._state == _LENGTH:
            self._close_quietly()
        elif isinstance(exc, OSError) and exc.strerror:
            self._fail(f"failed in readn2: {exc.strerror}")
        else:
            self._fail(EOF_MESSAGE)

    def _close_quietly(self) -> None:
        """The loop ended normally (EOF, oversized length): dnsdist logs the close."""
        self._state = _DONE
        if self._log_connections():
            self._log(f"Closed control connection from {self._client}")
        if self._transport is not None:
            self._transport.close()

    def _fail(self, why: str) -> None:
        self._state = _DONE
        self._log(f"Got an exception in client connection from {self._client}: {why}")
        if self._transport is not None:
            self._transport.abort()

    def _refuse(self, message: str) -> None:
        self._state = _DONE
        if self._verbose():
            self._log(message)
        assert self._transport is not None
        self._transport.abort()


# dnsdist listens with a backlog of 5; a flood then leaves SYNs to retransmit for seconds.
# A deeper queue lets the server itself refuse the clients over the limit, at once.
CONSOLE_BACKLOG = 128


def bind_console_socket(host: str, port: int) -> socket.socket:
    """Bind and listen now, while the config is read, as dnsdist's controlSocket().

    :raises OSError: when the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(CONSOLE_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_console(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, **callables: Any
) -> asyncio.Server:
    """Start accepting on a socket from ``bind_console_socket``.

    Logs ``Accepting control connections on <addr>`` as dnsdist's console thread
    does. ``callables`` are ConsoleServer's keyword arguments.
    """
    connections = ConsoleConnections()

    def factory() -> ConsoleServer:
        return ConsoleServer(connections=connections, **callables)

    server = await loop.create_server(factory, sock=sock, backlog=CONSOLE_BACKLOG)
    log = callables.get("log")
    if log is not None:
        log(f"Accepting control connections on {format_peer(sock.getsockname())}")
    return server
