"""What the backend layer needs from the frontend that forwarded a query: the ways its answer
comes back. Every frontend (UDP listener, TCP/DoT connection, DoH request) is one."""
from __future__ import annotations

from typing import Any, Protocol


class AnswerSink(Protocol):
    def answer(self, st: Any, resp: bytes, delay_ms: int) -> None:
        """The bytes to send (delay_ms: DelayAction's wait, over UDP only)."""

    def answer_part(self, st: Any, resp: bytes) -> None:
        """One message of a zone transfer, more to come (TCP and DoT only)."""

    def end(self, st: Any) -> None:
        """The query ends without an answer (a stream connection is closed, as dnsdist)."""

    def timed_out(self, st: Any) -> None:
        """The backend never answered (DoH answers 502)."""
