"""Protobuf logging to a remote collector: newRemoteLogger() and the PBDNSMessage records that
RemoteLogAction / RemoteLogResponseAction send, as dnsdist 1.7.3 sends them.

The logger keeps one TCP connection, each message framed by a 2-byte length; while it cannot
connect it retries every reconnectWaitTime seconds, logging each failure as dnsdist does, and
messages beyond the queue are counted as dropped. Field order, the repeated time fields and
what goes into the `response` part were read off real dnsdist's output (a local collector).
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from pydist.dns.reader import WireError, counts, name_text, records
from pydist.protobuf import field_bytes as fb
from pydist.protobuf import field_varint as fv

QUERY, RESPONSE = 1, 2


class QueuedSender:
    """A bounded queue of framed records and the task that writes them to one connection:
    the packet path only appends; a slow or absent collector costs drops, never waiting."""

    def __init__(self, max_queued: int) -> None:
        self.max_queued = max_queued
        self.queue: deque[bytes] = deque()
        self.task: asyncio.Task | None = None
        self.wakeup: asyncio.Event | None = None

    def queue_record(self, framed: bytes) -> bool:
        """False when the queue is full (the caller counts the drop)."""
        if len(self.queue) >= self.max_queued:
            return False
        self.queue.append(framed)
        if self.wakeup is not None:
            self.wakeup.set()
        return True

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.task is None:
            self.wakeup = asyncio.Event()
            self.task = loop.create_task(self._run())

    async def _run(self) -> None:
        raise NotImplementedError

    async def _drain(self, writer: asyncio.StreamWriter, timeout: float | None = None) -> None:
        """Write what is queued, then wait for more, until the connection goes."""
        assert self.wakeup is not None
        while True:
            while self.queue:
                writer.write(self.queue.popleft())
            await asyncio.wait_for(writer.drain(), timeout)
            if writer.transport.is_closing():
                return
            self.wakeup.clear()
            await self.wakeup.wait()


class RemoteLogger(QueuedSender):
    """newRemoteLogger(address[, timeout[, maxQueuedEntries[, reconnectWaitTime]]])."""

    def __init__(self, host: str, port: int, timeout: float = 2.0, max_queued: int = 100,
                 reconnect_wait: float = 1.0, log: Callable[[str], None] = print) -> None:
        super().__init__(max_queued)
        self.host, self.port = host, port
        self.timeout, self.reconnect_wait = timeout, reconnect_wait
        self.log = log
        self.processed = self.drops = 0

    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.address()} ({self.processed} processed, {self.drops} dropped)"

    def send(self, message: bytes) -> None:
        """Queue one record (2-byte length framing)."""
        if len(message) > 0xFFFF or not self.queue_record(struct.pack("!H", len(message))
                                                          + message):
            self.drops += 1
            return
        self.processed += 1

    async def _run(self) -> None:
        while True:
            writer = await self._connect()
            if writer is None:
                await asyncio.sleep(self.reconnect_wait)
                continue
            try:
                await self._drain(writer, self.timeout)
            except (TimeoutError, OSError):
                pass
            finally:
                writer.close()

    async def _connect(self) -> asyncio.StreamWriter | None:
        addr = self.address()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                               self.timeout)
            return writer
        except (TimeoutError, OSError) as e:
            why = os.strerror(getattr(e, "errno", None) or errno.ETIMEDOUT)
            self.log(f"Error connecting to remote logger {addr}: connecting to {addr} "
                     f"failed: {why}")
            return None


def new_message_id() -> bytes:
    return uuid.uuid4().bytes


def _time_fields(number_sec: int, number_usec: int, t: float) -> bytes:
    sec = int(t)
    return fv(number_sec, sec) + fv(number_usec, int((t - sec) * 1_000_000))


def _packed(host: str) -> bytes:
    return ipaddress.ip_address(str(host).split("%", 1)[0]).packed


class PBMessage:
    """One PBDNSMessage for a query (kind 1) or its answer (kind 2), dnsdist 1.7.3's
    DNSDistProtoBufMessage: built from `dq` when serialized, with what an alter function (or
    ipEncryptKey) set in place of the query's own values. Fields in dnsdist's order; the
    request's second time field is always the time of serializing, as in dnsdist (so a
    setTime() shows in the first one only).

    `dq` gives the client and listener addresses, the protocol, the question and the time the
    query arrived (`dq.now`); `packet` is what is logged in inBytes and the ID.
    """

    __slots__ = ("kind", "answer", "dq", "message_id", "packet", "include_cname", "server_id",
                 "requestor", "responder", "bytes", "time", "query_time", "rcode", "ecs",
                 "question", "rrs", "tags")

    def __init__(self, kind: int, dq: Any, message_id: bytes, packet: bytes,
                 include_cname: bool = False) -> None:
        self.kind, self.dq, self.message_id, self.packet = kind, dq, message_id, packet
        self.answer = kind == RESPONSE      # built from an answer: its rcode and records
        self.include_cname = include_cname
        self.server_id: str | None = None
        self.requestor: tuple[str, int] | None = None
        self.responder: tuple[str, int] | None = None
        self.bytes: int | None = None
        self.time: tuple[int, int] | None = None
        self.query_time: tuple[int, int] | None = None
        self.rcode: int | None = None
        self.ecs: bytes | None = None           # the network address, masked
        self.question: tuple[str, int, int] | None = None
        self.rrs: list[bytes] = []
        self.tags: list[str] = []

    def add_rr(self, name: str, rtype: int, rclass: int, ttl: int, rdata: bytes) -> None:
        self.rrs.append(_rr(name, rtype, rclass, ttl, rdata))

    def serialize(self) -> bytes:
        dq, packet = self.dq, self.packet
        now = time.time()
        client = self.requestor or (str(dq.remote[0]), int(dq.remote[1]))
        local = self.responder or (str(dq.local[0]), int(dq.local[1]))
        src = _packed(client[0])
        qname, qtype, qclass = self.question or (str(dq.qname), dq.qtype, dq.qclass)
        first = (fv(9, self.time[0]) + fv(10, self.time[1]) if self.time is not None
                 else _time_fields(9, 10, now))
        out = [fv(1, self.kind), first, fb(2, self.message_id),
               fv(4, 1 if len(src) == 4 else 2), fv(5, dq.transport.protobuf_code),
               fb(6, src), fb(7, _packed(local[0])),
               fv(8, len(packet) if self.bytes is None else self.bytes),
               _time_fields(9, 10, now), fv(11, struct.unpack_from("!H", packet)[0]),
               fb(12, fb(1, qname.encode("latin-1")) + fv(2, qtype) + fv(3, qclass)),
               fv(20, client[1]), fv(21, local[1])]
        if self.server_id:
            out.append(fb(3, self.server_id.encode("latin-1")))
        if self.ecs is not None:
            out.append(fb(14, self.ecs))
        part = (fv(5, self.query_time[0]) + fv(6, self.query_time[1])
                if self.query_time is not None
                else _time_fields(5, 6, getattr(dq, "query_time", dq.now)))
        if self.answer:
            part += fv(1, packet[3] & 0x0F if self.rcode is None else self.rcode)
            part += b"".join(_records(packet, self.include_cname))
        elif self.rcode is not None:
            part += fv(1, self.rcode)
        part += b"".join(self.rrs)
        part += b"".join(fb(4, t.encode("latin-1")) for t in self.tags)
        out.append(fb(13, part))
        return b"".join(out)


def pb_message(kind: int, dq: Any, message_id: bytes, packet: bytes, server_id: str | None,
               response: bytes = b"", include_cname: bool = False) -> bytes:
    """One PBDNSMessage as the logging actions send it when no alter function changes it."""
    msg = PBMessage(kind, dq, message_id, packet, include_cname)
    msg.server_id = server_id
    return msg.serialize()


def _rr(name: str, rtype: int, rclass: int, ttl: int, rdata: bytes) -> bytes:
    return fb(2, fb(1, name.encode("latin-1")) + fv(2, rtype) + fv(3, rclass) + fv(4, ttl)
              + fb(5, rdata))


def _records(packet: bytes, include_cname: bool) -> list[bytes]:
    """The answer section's A and AAAA records (and CNAMEs when asked), as dnsdist logs them;
    none from an answer that cannot be walked."""
    out = []
    try:
        answers = counts(packet)[1]
        for rr in records(packet):
            if rr.index >= answers:
                break
            if rr.rtype in (1, 28) and rr.rdlen == (4 if rr.rtype == 1 else 16):
                rdata = bytes(packet[rr.rdata:rr.rdata + rr.rdlen])
            elif rr.rtype == 5 and include_cname:
                rdata = name_text(packet, rr.rdata).encode("latin-1")
            else:
                continue
            out.append(_rr(name_text(packet, rr.start), rr.rtype, rr.rclass, rr.ttl, rdata))
    except WireError:
        return []
    return out
