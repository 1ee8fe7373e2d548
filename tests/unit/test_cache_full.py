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
