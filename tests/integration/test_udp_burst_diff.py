"""A burst of UDP queries from many source ports, all sent before any answer is read, pydist
(recvmmsg/sendmmsg batches, pydist/net/mmsg.py) against real dnsdist 1.7.3: every client gets
the same answers (its ID, RD and CD back; misses byte for byte, hits with their TTL aged), and
the counters that the burst moves are the same. Then the same burst on pydist forced onto its
portable recvfrom/sendto path (PYDIST_NO_MMSG) gives the same answers again."""
from __future__ import annotations

import os
import select
import socket
import time

import dns.flags
import dns.message

from tests.conftest import Starter
from tests.helpers.conf import console_prelude
from tests.helpers.doh_backend import console
from tests.helpers.pydist_proc import DnsdistProcess, IMPLS

CLIENTS = 24
PER_CLIENT = 6
CONF = console_prelude(cache=10000)
COUNTERS = ("queries", "responses", "cache-hits", "cache-misses", "rdqueries",
            "noncompliant-queries", "frontend-noerror", "frontend-nxdomain", "downstream-timeouts",
            "downstream-send-errors")


def _query(client: int, k: int, phase: str) -> bytes:
    """Misses: one name per (client, k); hits: the same names asked again, some with another
    case; RD off on some, CD on others, EDNS on a third."""
    name = f"c{client}-{k}.burst.test."
    if phase == "hit" and k % 3 == 1:
        name = name.upper()
    q = dns.message.make_query(name, "A" if k % 4 else "AAAA", use_edns=0 if k % 3 == 2 else False)
    q.id = (client * 1000 + k * 17 + (7 if phase == "hit" else 0)) & 0xFFFF
    if k % 2:
        q.flags &= ~dns.flags.RD
    if k % 5 == 3:
        q.flags |= dns.flags.CD
    return q.to_wire()


def _burst(proc: DnsdistProcess, phase: str) -> dict[tuple[int, int], bytes]:
    """Every client's queries sent, then every answer read: (client, ID) -> answer."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(CLIENTS)]
    try:
        for c, s in enumerate(socks):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        for k in range(PER_CLIENT):
            for c, s in enumerate(socks):
                s.sendto(_query(c, k, phase), proc.addr())
        got: dict[tuple[int, int], bytes] = {}
        deadline = time.monotonic() + 5
        while len(got) < CLIENTS * PER_CLIENT and time.monotonic() < deadline:
            ready, _, _ = select.select(socks, [], [], 0.2)
            for s in ready:
                while True:
                    try:
                        data, _ = s.recvfrom(4096)
                    except BlockingIOError:
                        break
                    got[(socks.index(s), int.from_bytes(data[:2], "big"))] = data
        return got
    finally:
        for s in socks:
            s.close()


def _ttls_zeroed(data: bytes) -> str:
    """An answer as text with its TTLs left out (a hit's TTL depends on the second it is read)."""
    msg = dns.message.from_wire(data)
    for section in (msg.answer, msg.authority, msg.additional):
        for rrset in section:
            rrset.ttl = 0
    return f"{data[:4].hex()} {msg.to_text()}"


def _stats(proc: DnsdistProcess) -> dict[str, str]:
    out = {}
    for line in console(proc, "dumpStats()").splitlines():
        cells = line.split()
        for name, value in zip(cells[0::2], cells[1::2]):
            if name in COUNTERS:
                out[name] = value
    return out


def _run(start_proc: Starter, impl: str, backend: str) -> tuple[dict, dict, dict]:
    proc = start_proc(impl, CONF, {"backend": backend})
    try:
        misses = _burst(proc, "miss")
        hits = _burst(proc, "hit")
        return misses, {key: _ttls_zeroed(v) for key, v in hits.items()}, _stats(proc)
    finally:
        proc.stop()


def test_burst_from_many_ports_answered_as_dnsdist(start_proc: Starter, responder_factory) -> None:
    views = {impl: _run(start_proc, impl, responder_factory().address) for impl in IMPLS}
    misses, hits, stats = views["pydist"]
    assert len(misses) == len(hits) == CLIENTS * PER_CLIENT
    assert misses == views["dnsdist"][0]
    assert hits == views["dnsdist"][1]
    assert stats == views["dnsdist"][2] and int(stats["cache-hits"]) >= CLIENTS * PER_CLIENT // 2


def test_portable_path_answers_the_same(start_proc: Starter, responder_factory,
                                        monkeypatch) -> None:
    batched = _run(start_proc, "pydist", responder_factory().address)
    monkeypatch.setenv("PYDIST_NO_MMSG", "1")
    assert os.environ["PYDIST_NO_MMSG"] == "1"
    portable = _run(start_proc, "pydist", responder_factory().address)
    assert portable == batched
