"""dnstap logging: newFrameStreamTcpLogger / newFrameStreamUnixLogger and the records that
DnstapLogAction / DnstapLogResponseAction send, as dnsdist 1.7.3 (through libfstrm) sends them.

Frame Streams, bidirectional: the writer sends READY with the content type, waits for ACCEPT,
sends START, then one frame per record (4-byte length); a lost connection is reopened after
reopenInterval seconds, silently, as libfstrm does. The Dnstap and Message field order was read
off real dnsdist's output.
"""
from __future__ import annotations

import asyncio
import ipaddress
import struct
import time
from typing import Any

from pydist.protobuf import field_bytes as fb
from pydist.protobuf import field_varint as fv
from pydist.protobuf import varint
from pydist.remotelog import QueuedSender

CONTENT_TYPE = b"protobuf:dnstap.Dnstap"
CONTROL_ACCEPT, CONTROL_START, CONTROL_READY = 1, 2, 4
CLIENT_QUERY, CLIENT_RESPONSE = 5, 6
VERSION = b"dnsdist 1.7.3"


def _control(kind: int) -> bytes:
    body = struct.pack("!III", kind, 1, len(CONTENT_TYPE)) + CONTENT_TYPE
    return b"\0\0\0\0" + struct.pack("!I", len(body)) + body


class FrameStreamLogger(QueuedSender):
    """One frame-stream connection (TCP address or unix socket path) and its record queue."""

    def __init__(self, target: str, host: str | None, port: int, options: dict[str, Any]) -> None:
        super().__init__(int(options.get("outputQueueSize") or 64) * 8)
        self.target, self.host, self.port = target, host, port
        self.reopen = float(options.get("reopenInterval") or 5)
        self.sent = self.dropped = 0

    def __str__(self) -> str:
        return (f"FrameStreamLogger to {self.target} ({self.sent} frames sent, {self.dropped} "
                "dropped, 0 permanent failures)")

    def send(self, record: bytes) -> None:
        """As dnsdist: a frame counts as sent once handed to the writer, connected or not."""
        if self.queue_record(struct.pack("!I", len(record)) + record):
            self.sent += 1
        else:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                pass
            await asyncio.sleep(self.reopen)

    async def _session(self) -> None:
        if self.host is None:
            reader, writer = await asyncio.open_unix_connection(self.target)
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(_control(CONTROL_READY))
            await asyncio.wait_for(self._expect_accept(reader), 5.0)
            writer.write(_control(CONTROL_START))
            await self._drain(writer)
        finally:
            writer.close()

    @staticmethod
    async def _expect_accept(reader: asyncio.StreamReader) -> None:
        escape, size = struct.unpack("!II", await reader.readexactly(8))
        if size > 512:              # a control frame is a few dozen bytes: not a collector
            raise ValueError("oversized control frame")
        body = await reader.readexactly(size)
        if escape != 0 or struct.unpack_from("!I", body)[0] != CONTROL_ACCEPT:
            raise ValueError("the collector did not accept the stream")


def _fixed32(number: int, value: int) -> bytes:
    return varint((number << 3) | 5) + struct.pack("<I", value & 0xFFFFFFFF)


def _time(number_sec: int, t: float) -> bytes:
    sec = int(t)
    return fv(number_sec, sec) + _fixed32(number_sec + 1, int((t - sec) * 1_000_000_000))


class DnstapMessage:
    """One Dnstap record (dnsdist's DnstapMessage): CLIENT_QUERY when `response` is None, else
    CLIENT_RESPONSE; an alter function may append `extra` fields (setExtra), each one sent
    after the message, as dnsdist appends them."""

    __slots__ = ("body", "extra")

    def __init__(self, identity: str, dq: Any, query: bytes | None, response: bytes | None,
                 query_time: float) -> None:
        self.body = dnstap_record(identity, dq, query, response, query_time)
        self.extra: list[bytes] = []

    def serialize(self) -> bytes:
        return self.body + b"".join(fb(3, e) for e in self.extra)


def dnstap_record(identity: str, dq: Any, query: bytes | None, response: bytes | None,
                  query_time: float) -> bytes:
    """One Dnstap record: CLIENT_QUERY when `response` is None, else CLIENT_RESPONSE."""
    client, local = dq.remote, dq.local
    src = ipaddress.ip_address(str(client[0]).split("%", 1)[0]).packed
    dst = ipaddress.ip_address(str(local[0]).split("%", 1)[0]).packed
    msg = [fv(1, CLIENT_QUERY if response is None else CLIENT_RESPONSE),
           fv(3, dq.transport.protobuf_code), fv(2, 1 if len(src) == 4 else 2),
           fb(4, src), fv(6, int(client[1])), fb(5, dst), fv(7, int(local[1])),
           _time(8, query_time)]
    if response is None:
        msg.append(fb(10, query or b""))
    else:
        msg += [_time(12, time.time()), fb(14, response)]
    return (fb(1, identity.encode("latin-1")) + fb(2, VERSION) + fv(15, 1)
            + fb(14, b"".join(msg)))
