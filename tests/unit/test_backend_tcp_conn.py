"""BackendConnection driven without sockets: ID matching, out-of-order answers, timeouts."""
from __future__ import annotations

import asyncio
from typing import Any

from pydist.backend.server import DownstreamState
from pydist.backend.tcp import BackendConnection, BackendTCPPool


class FakeTransport:
    """Collects what is written; `stuck` bytes stay in the write buffer (a peer not reading)."""

    def __init__(self, stuck: bool = False) -> None:
        self.written: list[bytes] = []
        self.stuck = stuck
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return 100 if self.stuck else 0

    def close(self) -> None:
        self.closed = True


def query(qid: int) -> bytes:
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01" + b"\x00" * 6 + b"\x01a\x00\x00\x01\x00\x01"


def framed(resp: bytes) -> bytes:
    return len(resp).to_bytes(2, "big") + resp


def make(loop: Any, stuck: bool = False, **opts: Any) -> tuple[BackendTCPPool, BackendConnection]:
    server = DownstreamState("127.0.0.1", 53, {"maxInFlight": 2, **opts})
    pool = BackendTCPPool(loop, server)
    conn = BackendConnection(pool)
    conn.connection_made(FakeTransport(stuck))
    return pool, conn


def test_answers_matched_by_id_in_any_order() -> None:
    loop = asyncio.new_event_loop()
    try:
        _, conn = make(loop)
        got: dict[int, bytes | None] = {}
        for qid in (1, 2):
            conn.send(query(qid), lambda r, q=qid: got.__setitem__(q, r), 0)
        ans2, ans1 = b"\x00\x02\x81\x80" + query(2)[4:], b"\x00\x01\x81\x80" + query(1)[4:]
        conn.data_received(framed(ans2)[:5])          # split frames are reassembled
        conn.data_received(framed(ans2)[5:] + framed(ans1))
        assert got == {2: ans2, 1: ans1} and not conn.pending
    finally:
        loop.close()


def test_unexpected_id_ends_the_exchange_without_retry() -> None:
    loop = asyncio.new_event_loop()
    try:
        pool, conn = make(loop, retries=5)
        got: list[bytes | None] = []
        conn.send(query(7), got.append, 0)
        conn.data_received(framed(b"\x00\x08\x81\x80" + query(7)[4:]))
        assert got == [None] and conn.transport.closed
        assert pool.server.tcp["tcpNewConnections"] == 0   # nothing reopened: no retry
    finally:
        loop.close()


def test_send_timeout_fails_a_stuck_write() -> None:
    async def run() -> tuple[BackendTCPPool, list]:
        pool, conn = make(asyncio.get_running_loop(), stuck=True, tcpSendTimeout=0.05,
                          retries=1)
        got: list[bytes | None] = []
        conn.send(query(3), got.append, 0)
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        return pool, got
    pool, got = asyncio.run(run())
    assert got == [None] and pool.server.tcp["tcpWriteTimeouts"] == 1
