"""A console client that stalls mid-frame never stops DNS service (one loop serves both)."""
from __future__ import annotations

import socket
import subprocess

from tests.conftest import Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query

CONF = console_prelude()


def test_dns_answered_while_console_client_stalls(start_proc: Starter, responder: object) -> None:
    proc = start_proc("pydist", CONF, {"backend": responder.address},
                      ready=r"Accepting control connections")
    console_port = int(proc.values["portconsole"])
    stalled = []
    try:
        for size in (10, 24 + 2):   # half a nonce; a nonce then half a length prefix
            s = socket.create_connection(("127.0.0.1", console_port), timeout=5)
            s.sendall(b"\x01" * size)
            stalled.append(s)
        for i in range(20):
            resp = query(proc.addr(), f"stall{i}.example.")
            assert resp is not None, f"query {i} unanswered while a console client stalls"
        # and the console itself still serves a well-behaved client
        res = subprocess.run(["dnsdist", "-C", str(proc.conf), "-e", "showVersion()"],
                             capture_output=True, text=True, timeout=10)
        assert res.stdout == "dnsdist 1.7.3\n"
    finally:
        for s in stalled:
            s.close()
    assert proc.alive()


def test_thousand_console_clients_at_once(start_proc: Starter, responder: object) -> None:
    """1000 silent console connections: beyond the limit (100) they are closed, DNS goes on,
    and once they leave, a real client is served again."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    proc = start_proc("pydist", CONF, {"backend": responder.address},
                      ready=r"Accepting control connections")
    console_port = int(proc.values["portconsole"])
    socks = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", console_port), timeout=5)
            socks.append(s)
        for i in range(10):
            assert query(proc.addr(), f"flood{i}.example.") is not None
        closed = _count_closed(socks, want=900, deadline=10.0)
        assert closed >= 900
    finally:
        for s in socks:
            s.close()
    res = subprocess.run(["dnsdist", "-C", str(proc.conf), "-e", "showVersion()"],
                         capture_output=True, text=True, timeout=10)
    assert res.stdout == "dnsdist 1.7.3\n"
    assert proc.alive()


def _count_closed(socks: list[socket.socket], want: int, deadline: float) -> int:
    """Sockets the server closed (EOF), polled together until `want` of them or the deadline."""
    import select
    import time
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed: set[int] = set()
    end = time.monotonic() + deadline
    while len(closed) < want and time.monotonic() < end:
        for fd, _ev in poller.poll(100):
            if by_fd[fd].recv(24, socket.MSG_DONTWAIT) == b"":
                closed.add(fd)
                poller.unregister(fd)
    return len(closed)
