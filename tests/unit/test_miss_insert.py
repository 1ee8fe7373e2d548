"""The miss path's shortcuts into the cache (issue 18): each must store or refuse exactly what
the long way does."""
from __future__ import annotations

import struct

from pydist.cache import PacketCache

NOW = 1_700_000_000.0


def query(i: int, name: str = "u.bench.example") -> bytes:
    wire = b"".join(bytes([len(lab)]) + lab for lab in f"{i}.{name}".encode().split(b"."))
    return struct.pack("!6H", i, 0x0100, 1, 0, 0, 1) + wire + b"\x00\x00\x01\x00\x01" + \
        b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"


def answer(q: bytes, ttl: int = 300) -> bytes:
    """One A record after the question (no OPT in the answer: ARCOUNT 0)."""
    qend = q.index(b"\x00\x00\x01\x00\x01", 12) + 5
    return (q[:2] + b"\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:qend]
            + b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!I", ttl) + b"\x00\x04\xc0\x00\x02\x01")


def qname_end(q: bytes) -> int:
    return q.index(b"\x00\x00\x01\x00\x01", 12) + 1


def test_same_question_stores_what_the_full_walk_stores() -> None:
    walked, told = PacketCache(100), PacketCache(100)
    for i in range(20):
        q = query(i)
        a = answer(q, 100 + i)
        e1 = walked.insert(None, q, qname_end(q), True, a, NOW)
        e2 = told.insert(None, q, qname_end(q), True, a, NOW, None, True)
        assert e1 is not None and e2 is not None
        assert (bytes(e1), e1.offsets, e1.validity) == (bytes(e2), e2.offsets, e2.validity)


def test_a_key_with_capitals_is_the_lowercase_key() -> None:
    pc = PacketCache(100)
    low, caps = query(1, "u.bench.example"), query(1, "U.Bench.EXAMPLE")
    assert pc.make_key(caps, qname_end(caps)) == pc.make_key(low, qname_end(low)) == low[2:]


def test_full_cache_refuses_and_still_counts_too_short_ttls() -> None:
    # 20 shards of one entry: the 21st distinct answer finds every shard full
    pc = PacketCache(20, min_ttl=50)
    i = 0
    while not pc.is_full_everywhere():
        q = query(i)
        pc.insert(None, q, qname_end(q), True, answer(q), NOW)
        i += 1
    assert pc.entries == 20
    q = query(i)
    assert pc.insert(None, q, qname_end(q), True, answer(q, 10), NOW) is None
    assert pc.ttl_too_shorts == 1          # dnsdist checks the TTL before the shard
    nomin = PacketCache(20)
    i = 0
    while not nomin.is_full_everywhere():
        q = query(i)
        nomin.insert(None, q, qname_end(q), True, answer(q), NOW)
        i += 1
    q = query(i)
    assert nomin.insert(None, q, qname_end(q), True, answer(q), NOW) is None
    assert nomin.entries == 20 and nomin.ttl_too_shorts == 0
