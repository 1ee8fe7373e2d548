"""What the query step decides, as dnsdist's processQuery: drop, answer now, or forward to a
backend. The step sends nothing; the frontend that received the query acts on the verdict."""
from __future__ import annotations

from typing import Any, Callable

DROP_KIND, ANSWER, FORWARD, NO_DOWNSTREAM_KIND, DEFERRED_KIND = 0, 1, 2, 3, 4


class Verdict:
    """One query's outcome when it is not forwarded. ANSWER: `data` to send (after `delay_ms`
    over UDP: DelayAction); `generated` is False for a cache hit (DoH keeps its added OPT only
    on generated answers). A FORWARD verdict is the query's in-flight state
    (pydist.backend.udp.InFlight, `kind` FORWARD): `server`, the prepared query `wire`, the
    proxy protocol header `proxy` (useProxyProtocol) and `xfr` (a zone transfer over TCP)."""

    __slots__ = ("kind", "data", "delay_ms", "generated")

    def __init__(self, kind: int, data: bytes = b"", delay_ms: int = 0,
                 generated: bool = True) -> None:
        self.kind, self.data, self.delay_ms, self.generated = kind, data, delay_ms, generated


DROP = Verdict(DROP_KIND)
# the query cannot be sent to the server chosen (a DoH client's family cannot go in a proxy
# protocol header): DoH answers 502 "no downstream server available", other transports drop
NO_DOWNSTREAM = Verdict(NO_DOWNSTREAM_KIND)


def answer(data: bytes, delay_ms: int = 0, generated: bool = True) -> Verdict:
    return Verdict(ANSWER, data, delay_ms, generated)


class Deferred:
    """A verdict that comes later (the cache's shared level is asked first): the frontend
    says what to do with it (`then`), the query step `resolve`s it."""

    __slots__ = ("act", "verdict")
    kind = DEFERRED_KIND

    def __init__(self) -> None:
        self.act: Callable[[Any], None] | None = None
        self.verdict: Any = None

    def then(self, act: Callable[[Any], None]) -> None:
        if self.verdict is not None:
            act(self.verdict)
        else:
            self.act = act

    def resolve(self, verdict: Any) -> None:
        if self.act is not None:
            self.act(verdict)
        else:
            self.verdict = verdict


class QueryOrigin:
    """What the connection knew about a query beyond its addresses: the TLS server name, the
    DoH request (HTTP rules), the proxy protocol TLVs. None of them for plain Do53."""

    __slots__ = ("sni", "http", "proxy_values")

    def __init__(self, sni: str = "", http: Any = None, proxy_values: list | None = None) -> None:
        self.sni, self.http, self.proxy_values = sni, http, proxy_values
