"""A packet cache whose every shard is full refuses an insert as dnsdist does (its shard is
full, whichever it is) without working out dnsdist's shard hash, which costs tens of µs in
Python: a full cache under misses is the steady state of a busy resolver front."""
from __future__ import annotations

import struct

import pytest

from pydist.cache import PacketCache


def query(i: int) -> bytes:
    name = b"".join(bytes([len(lab)]) + lab for lab in f"n{i}.full.test".encode().split(b"."))
    return struct.pack("!6H", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + name + b"\x00\x00\x01\x00\x01"


def answer(q: bytes) -> bytes:
    return (q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:]
            + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x01")


def fill(cache: PacketCache, count: int, now: float) -> int:
    stored = 0
    for i in range(count):
        q = query(i)
        stored += cache.insert(None, q, len(q) - 4, True, answer(q), now) is not None
    return stored


def test_every_shard_full_refuses_without_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = PacketCache(8, number_of_shards=2)
    fill(cache, 200, 1000.0)                   # far more names than room: every shard full
    assert cache.get_stats()["entries"] == 8
    monkeypatch.setattr(PacketCache, "_pieces", lambda *a: pytest.fail("hashed a full cache"))
    q = query(999)
    assert cache.insert(None, q, len(q) - 4, True, answer(q), 1000.0) is None
    assert cache.get_stats()["entries"] == 8


def test_a_cache_with_room_in_some_shard_still_decides_by_shard() -> None:
    """Below full, the shard decides as before: the same entries as a cache that never took
    the shortcut (its insert refused by the shard's count)."""
    a, b = PacketCache(8, number_of_shards=2), PacketCache(8, number_of_shards=2)
    stored_a = fill(a, 6, 1000.0)
    stored_b = fill(b, 6, 1000.0)
    assert stored_a == stored_b and a.get_stats()["entries"] == b.get_stats()["entries"]


def test_dnsdist_shards_worked_out_only_near_a_full_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    """A large cache far from full spends no dnsdist hash on its inserts; a small one (whose
    shards may fill by chance early) counts its shards the dnsdist way from the start."""
    calls = []
    real = PacketCache._pieces
    monkeypatch.setattr(PacketCache, "_pieces", lambda *a: calls.append(1) or real(*a))
    big = PacketCache(100_000)
    fill(big, 3000, 1000.0)
    assert calls == [] and not big._dnsdist_shards
    small = PacketCache(20, number_of_shards=2)
    fill(small, 3, 1000.0)
    assert small._dnsdist_shards and calls


def test_the_dnsdist_hash_is_unchanged() -> None:
    """The shard hash's shortcuts (the header's hash remembered, the lowercase name hashed as
    it is) give dnsdist's burtle key: pinned values."""
    cache = PacketCache(100)
    keys = [cache.make_key(q, len(q) - 4) for q in (query(1), query(2), query(77))]
    assert [cache._pieces(k, True) for k in keys] == PINNED


PINNED = [3612472551, 2626992217, 759269952]   # from the hash as it was before the shortcuts


def test_every_key_hashed_at_once_as_one_by_one() -> None:
    """The switch to dnsdist's shards hashes every stored key together (burtle_many): the
    same hashes as one by one, for names of every length, with and without EDNS."""
    import random

    from pydist.dns.burtle import burtle
    from pydist.dns.burtle_many import burtle_many
    rnd = random.Random(7)
    for size in (0, 1, 11, 12, 13, 30):
        datas = [bytes(rnd.randrange(256) for _ in range(size)) for _ in range(40)]
        inits = [rnd.randrange(1 << 32) for _ in datas]
        assert burtle_many(datas, inits) == [burtle(d, i) for d, i in zip(datas, inits)]
    cache = PacketCache(100_000)
    keys = []
    for i in range(300):
        q = query(i * 7919)
        if i % 3 == 0:        # an OPT record: another size of the key's rest
            q = q[:11] + b"\x01" + q[12:] + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
            keys.append(cache.make_key(q, len(q) - 15))
        elif i % 3 == 1:      # with a cookie: the options walked, one by one
            q = (q[:11] + b"\x01" + q[12:] + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x0c"
                 + b"\x00\x0a\x00\x08" + bytes([i % 256]) * 8)
            keys.append(cache.make_key(q, len(q) - 27))
        else:
            keys.append(cache.make_key(q, len(q) - 4))
    for udp in (True, False):
        assert cache._many_pieces(keys, udp) == [cache._pieces(k, udp) for k in keys]


def test_switch_to_dnsdist_shards_counts_every_entry() -> None:
    cache = PacketCache(100, number_of_shards=4)
    fill(cache, 60, 1000.0)     # past the switch (at once for 25-entry shards)
    assert cache._dnsdist_shards
    expected = [0] * 4
    for side in (0, 1):
        for key, entry in cache.items(side):
            assert entry.shard == cache._pieces(key, bool(side)) % 4
            expected[entry.shard] += 1
    assert cache._shard_counts == expected
