"""Loopback receivers for what pydist and dnsdist send out (carbon batches, protobuf logs):
an accept loop in a thread, each connection handled in its own."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable


def serve_connections(handle: Callable[[socket.socket], None]) -> int:
    """Listen on 127.0.0.1 and hand each connection to `handle` (closed after it); the port."""
    sock = socket.create_server(("127.0.0.1", 0))

    def accept_loop() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=_handle_and_close, args=(handle, conn), daemon=True).start()
    threading.Thread(target=accept_loop, daemon=True).start()
    return sock.getsockname()[1]


def _handle_and_close(handle: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn:
        handle(conn)
