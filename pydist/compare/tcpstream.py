"""Client-to-server TCP streams of a capture put back in order, cut into DNS messages.

Real captures split a query over segments, carry several queries in one, retransmit and
reorder: the comparer must replay what the server read, not what one segment held.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

FlowKey = tuple[bytes, int, bytes, int]


@dataclass
class _Flow:
    origin: str                       # the first frame of the message being assembled
    next_seq: int | None = None
    buf: bytearray = field(default_factory=bytearray)
    pending: dict[int, bytes] = field(default_factory=dict)   # segments that came early


class TCPReassembler:
    """Feed segments with `add`; each call returns the whole DNS messages it completed."""

    def __init__(self) -> None:
        self.flows: dict[FlowKey, _Flow] = {}

    def add(self, key: FlowKey, seq: int, syn: bool, data: bytes,
            origin: str) -> list[tuple[str, bytes]]:
        flow = self.flows.get(key)
        if flow is None or syn:
            flow = self.flows[key] = _Flow(origin, (seq + 1) & 0xFFFFFFFF if syn else None)
        if not data:
            return []
        if flow.next_seq is None:      # capture started mid-stream: take it from here
            flow.next_seq = seq
        if not flow.buf:
            flow.origin = origin
        self._place(flow, seq, data)
        return self._messages(flow, origin)

    @staticmethod
    def _place(flow: _Flow, seq: int, data: bytes) -> None:
        ahead = (seq - flow.next_seq) & 0xFFFFFFFF
        if ahead and ahead < 0x80000000:
            flow.pending[seq] = data           # a gap before it: keep until filled
            return
        skip = (flow.next_seq - seq) & 0xFFFFFFFF if ahead else 0
        if skip >= len(data):
            return                             # a retransmission of what we have
        flow.buf += data[skip:]
        flow.next_seq = (flow.next_seq + len(data) - skip) & 0xFFFFFFFF
        while flow.next_seq in flow.pending:
            more = flow.pending.pop(flow.next_seq)
            flow.buf += more
            flow.next_seq = (flow.next_seq + len(more)) & 0xFFFFFFFF

    @staticmethod
    def _messages(flow: _Flow, current: str) -> list[tuple[str, bytes]]:
        out = []
        while len(flow.buf) >= 2:
            size = struct.unpack("!H", flow.buf[:2])[0]
            if len(flow.buf) < 2 + size:
                break
            out.append((flow.origin, bytes(flow.buf[2:2 + size])))
            del flow.buf[:2 + size]
            flow.origin = current      # what is left began in the latest segment
        return out

    def leftovers(self) -> list[str]:
        """Origins of streams that ended in the middle of a message (or with a gap)."""
        return [f.origin for f in self.flows.values() if f.buf or f.pending]
