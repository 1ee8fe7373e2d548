"""What stands in for the network in the test bench: the query a case sends, and backends
that answer at once (a made-up answer of the asked type, or the rcode the case asks for)."""
from __future__ import annotations

from typing import Any, Callable

import dnslib

from pydist.backend.server import DownstreamState
from pydist.testbench.cases import Case

RCODES = {"nxdomain": 3, "servfail": 2, "refused": 5}
STANDIN_TTL = 300
ADDRESSES = {"A": "192.0.2.1", "AAAA": "2001:db8::1"}


def build_query(case: Case) -> bytes:
    """The case's query on the wire (dnslib: the bench is no hot path)."""
    try:
        qtype = getattr(dnslib.QTYPE, case.qtype)      # TYPEnn included
    except (AttributeError, dnslib.DNSError):
        raise ValueError(f"unknown query type '{case.qtype}'") from None
    try:
        record = dnslib.DNSRecord.question(case.qname, "A")
    except Exception as e:  # noqa: BLE001 -- dnslib's label errors are of several types
        raise ValueError(f"bad query name '{case.qname}': {e}") from None
    record.q.qtype = qtype
    record.header.id = 4242
    record.header.rd = int(case.rd)
    if case.edns or case.do:
        record.add_ar(dnslib.EDNS0(udp_len=case.bufsize, flags="do" if case.do else ""))
    return bytes(record.pack())


def standin_answer(query: bytes, mode: str) -> bytes | None:
    """The stand-in backend's answer to `query` (None: it never answers)."""
    if mode == "drop":
        return None
    try:
        request = dnslib.DNSRecord.parse(query)
    except Exception:  # noqa: BLE001 -- what the path sent is not DNS: no answer
        return None
    reply = request.reply()
    if mode in RCODES:
        reply.header.rcode = RCODES[mode]
        return reply.pack()
    qtype = dnslib.QTYPE.get(request.q.qtype)
    if qtype in ADDRESSES:
        rdata: Any = dnslib.A(ADDRESSES[qtype]) if qtype == "A" else dnslib.AAAA(ADDRESSES[qtype])
        reply.add_answer(dnslib.RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=STANDIN_TTL))
    elif qtype == "TXT":
        reply.add_answer(dnslib.RR(request.q.qname, request.q.qtype,
                                   rdata=dnslib.TXT("pydist-test"), ttl=STANDIN_TTL))
    return reply.pack()


class StandInUDP:
    """In place of a server's BackendUDP: records the query and answers it at once through the
    packet path's UDP answer step (or, `answer=False`, only records it: the console's dry run)."""

    def __init__(self, server: DownstreamState, path: Any,
                 forwarded: list[tuple[DownstreamState, bytes]], answer: bool = True) -> None:
        self.server, self.path, self.forwarded, self.answer = server, path, forwarded, answer
        self.mode = "answer"

    def send(self, query: bytes, state: Any, proxy: bytes = b"") -> bool:
        self.forwarded.append((self.server, query))
        if self.answer:
            self.server.queries += 1
            resp = standin_answer(query, self.mode)
            if resp is not None:
                self.path.backends.udp_answer(self.server, resp, state)
        return True

    def close(self) -> None:
        pass


class StandInTCP:
    """In place of a server's TCP (or DoT) connection pool, as StandInUDP."""

    def __init__(self, server: DownstreamState, forwarded: list[tuple[DownstreamState, bytes]],
                 answer: bool = True) -> None:
        self.server, self.forwarded, self.answer = server, forwarded, answer
        self.mode = "answer"

    def query(self, query: bytes, reply: Callable[[bytes | None], None], proxy: bytes = b"",
              owner: Any = None) -> None:
        self.forwarded.append((self.server, query))
        if self.answer:
            self.server.queries += 1
            reply(standin_answer(query, self.mode))

    def drop_owner(self, owner: Any) -> None:
        pass

    def close(self) -> None:
        pass
