"""One copy of each answer between the cache's two levels (issue 18 item 4): the exact-bytes
level sends the entry's own bytes, aged in place, and every other reader still gets the
answer dnsdist would give (its ID, name case, RD/CD, TTLs aged from the stored ones)."""
from __future__ import annotations

import sys
import tracemalloc

import dns.flags
import dns.message

from pydist.cache import PacketCache
from tests.unit.test_cache import T0, answer, fill, get, qend, query, ttls_of


def test_exact_hits_send_the_entry_itself_no_index_record() -> None:
    pc = PacketCache(100)
    wire = query(qid=1)
    fill(pc, wire, answer(wire, ttls=(100, 3600)))
    get(pc, query(qid=2), now=T0 + 1)
    fast = pc.lookup_exact(query(qid=3), True, int(T0) + 5)
    assert fast is pc.entry_for(1, pc.make_key(wire, qend(wire)))
    assert not pc._exact[1] and fast[:2] == query(qid=3)[:2]
    assert ttls_of(fast) == [95, 3595]
    assert ttls_of(pc.lookup_exact(query(qid=4), True, int(T0) + 99)) == [1, 3501]
    assert pc.lookup_exact(query(qid=4), True, int(T0) + 100) is None  # expired


def test_readers_of_an_aged_entry_get_dnsdist_answers() -> None:
    pc = PacketCache(100)
    wire = query(qid=1)
    fill(pc, wire, answer(wire, ttls=(300, 3600)))
    get(pc, wire, now=T0)
    assert ttls_of(pc.lookup_exact(query(qid=9), True, int(T0) + 50)) == [250, 3550]
    # another case of the name, and the full lookup, age from the stored TTLs
    upper = query("WWW.EXAMPLE.COM.", qid=7)
    full = get(pc, upper, now=T0 + 60)
    assert ttls_of(full) == [240, 3540] and full[:2] == upper[:2]
    assert bytes(full[12:qend(upper)]) == upper[12:qend(upper)]
    assert ttls_of(pc.lookup_exact(upper, True, int(T0) + 70)) == [230, 3530]
    # RD off: another key, nothing shared
    assert get(pc, query(qid=1, flags=0), now=T0 + 70) is None
    entry = pc.entry_for(1, pc.make_key(wire, qend(wire)))
    stored = dns.message.from_wire(entry.original())
    assert [rr.ttl for rr in stored.answer] == [300, 3600]


def test_rd_cd_of_the_query_in_the_shared_bytes() -> None:
    pc = PacketCache(100)
    wire = query(qid=1, flags=dns.flags.RD | dns.flags.CD)
    resp = bytearray(answer(wire))
    resp[2] &= 0xFE                  # a backend that cleared RD and CD
    resp[3] &= 0xEF
    fill(pc, wire, bytes(resp))
    get(pc, wire)
    fast = pc.lookup_exact(wire, True, int(T0))
    assert fast[2] & 0x01 and fast[3] & 0x10


def test_a_full_cache_costs_at_most_270_bytes_an_entry() -> None:
    """A regression bound (was about 600 with a second copy and an index record per hit, 290
    with seven slots per entry and an int of its own for the second it was last aged to).
    Entries stored and hit over several seconds, the frontend's clock one int per batch."""
    pc = PacketCache(4000)
    wires = [query(f"n{i}.example.", qid=1) for i in range(2000)]
    answers = [answer(w) for w in wires]
    batch_seconds = [int(T0) + 2 + i // 500 for i in range(2000)]
    for i in range(1, 2000):
        if batch_seconds[i] == batch_seconds[i - 1]:
            batch_seconds[i] = batch_seconds[i - 1]   # one int object per batch, as udp.py
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, (w, a) in enumerate(zip(wires, answers)):
            fill(pc, w, a, now=T0 + i // 500)
            get(pc, w, now=T0 + 1 + i // 500)
            assert pc.lookup_exact(w, True, batch_seconds[i]) is not None
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used / 2000 < 270, used / 2000


def test_a_100000_entry_cache_keeps_its_tables_at_30_bytes_an_entry() -> None:
    """One dict of 100,000 entries allocates 52 bytes an entry (a 2**18 table); the entries
    spread over a few dicts by hash fill theirs: about 30. Lookups find every entry."""
    pc = PacketCache(100_000, number_of_shards=1)
    response = answer(query(qid=1))
    offsets = (len(response) - 10,)
    header = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    keys = [header + b"\x04" + i.to_bytes(4, "big") + b"\x00\x00\x01\x00\x01"
            for i in range(99_000)]
    for key in keys:
        assert pc.store(True, key, response, int(T0), int(T0) + 60, offsets, None, int(T0))
    assert pc.entries == 99_000
    tables = sum(sys.getsizeof(part) for part in pc._parts[1])
    assert tables / 99_000 < 34, tables / 99_000
    assert all(pc.entry_for(True, key) is not None for key in keys[::97])
    assert PacketCache(1000)._nparts == 1       # small caches keep one dict


def test_the_first_hit_after_the_insert_is_ready_at_once() -> None:
    """A query whose bytes are its entry's key finds the entry ready on its first exact-level
    lookup: the answer the full lookup would have given (ID, RD/CD restored over a backend
    that cleared them, TTLs aged), from the entry's own bytes."""
    wire = query(qid=1, flags=dns.flags.RD | dns.flags.CD)
    resp = bytearray(answer(wire, ttls=(100, 3600)))
    resp[2] &= 0xFE
    resp[3] &= 0xEF
    full_pc, fast_pc = PacketCache(100), PacketCache(100)
    for pc in (full_pc, fast_pc):
        fill(pc, wire, bytes(resp))
    client = query(qid=9, flags=dns.flags.RD | dns.flags.CD)
    full = get(full_pc, client, now=T0 + 7)
    fast = fast_pc.lookup_exact(client, True, int(T0) + 7)
    assert fast is fast_pc.entry_for(1, fast_pc.make_key(wire, qend(wire)))
    assert bytes(fast) == bytes(full) and ttls_of(fast) == [93, 3593]
    assert fast_pc.hits == 1 and not fast_pc._exact[1]


def test_the_first_exact_hit_leaves_to_the_full_path_what_it_must() -> None:
    pc = PacketCache(100)
    upper = query("WWW.EXAMPLE.COM.", qid=1)
    fill(pc, upper)                                   # stored with the capitals
    lower = query(qid=2)
    assert pc.lookup_exact(lower, True, int(T0)) is None       # another case: a copy of its own
    assert pc.entry_for(1, pc.make_key(lower, qend(lower))).stamp < 0
    expired = PacketCache(100)
    fill(expired, lower, answer(lower, ttls=(10,)))
    assert expired.lookup_exact(lower, True, int(T0) + 10) is None
    ecs = PacketCache(100, parse_ecs=True)            # the subnet is compared on lookups
    fill(ecs, lower)
    assert ecs.lookup_exact(lower, True, int(T0)) is None
    assert pc.hits == expired.hits == ecs.hits == 0
