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


def test_shards_worked_out_in_batches_while_none_can_be_full(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A large cache far from full spends no single dnsdist hash on its inserts: they wait,
    and are hashed together once a shard's capacity of them is pending (5,000 here)."""
    single, batches = [], []
    real_one, real_many = PacketCache._pieces, PacketCache._many_pieces
    monkeypatch.setattr(PacketCache, "_pieces", lambda *a: single.append(1) or real_one(*a))
    monkeypatch.setattr(PacketCache, "_many_pieces",
                        lambda self, keys, udp, qlens=None: batches.append(len(keys)) or
                        real_many(self, keys, udp, qlens))
    big = PacketCache(100_000)
    fill(big, 4999, 1000.0)
    assert single == [] and batches == [] and len(big._pending[1]) == 4999
    fill(big, 12_000, 1000.0)       # the same first 4,999, then 7,001 new ones
    assert single == [] and batches and batches[0] == 5000
    assert big.get_stats()["entries"] == 12_000


def reference_stored(count: int, entries: int, shards: int) -> set[bytes]:
    """What dnsdist keeps of `count` distinct names: each insert refused when its shard
    (burtle key modulo the shards) holds entries // shards already."""
    ref = PacketCache(entries, number_of_shards=shards)
    held = [0] * shards
    kept = set()
    for i in range(count):
        q = query(i)
        key = ref.make_key(q, len(q) - 4)
        shard = ref._pieces(key, True) % shards
        if held[shard] < entries // shards:
            held[shard] += 1
            kept.add(key)
    return kept


def stored_keys(cache: PacketCache) -> set[bytes]:
    return {key for key, _ in cache.items(1)}


@pytest.mark.parametrize("entries,shards", [(100, 4), (1000, 20), (30, 3), (7, 7)])
def test_late_shards_store_and_refuse_what_dnsdist_does(entries: int, shards: int) -> None:
    """Stored while no shard could be full, shard worked out later: the same entries kept
    and refused as deciding each insert by its shard at once."""
    for count in (entries // 2, entries, entries * 3):
        cache = PacketCache(entries, number_of_shards=shards)
        fill(cache, count, 1000.0)
        assert stored_keys(cache) == reference_stored(count, entries, shards)


def test_room_comes_back_after_removals() -> None:
    """Entries removed (expunge, expiry) make room: later inserts are stored without a
    shard again, and the shard counts stay those of dnsdist's shards."""
    cache = PacketCache(100, number_of_shards=4)
    fill(cache, 300, 1000.0)
    assert cache._room <= 0
    assert cache.expunge(40) > 0
    assert cache._room > 0 and max(cache._shard_counts) <= 10
    stored = fill(cache, 300, 1000.0)            # the same names again: some come back
    assert stored and cache.get_stats()["entries"] == sum(cache._shard_counts) + \
        len(cache._pending[1])
    cache.purge_expired(0, 10_000_000.0)         # everything expired: all removed
    assert cache.get_stats()["entries"] == 0 and cache._shard_counts == [0] * 4
    assert cache._room == 25


def test_the_dnsdist_hash_is_unchanged() -> None:
    """The shard hash's shortcuts (the header's hash remembered, the lowercase name hashed as
    it is) give dnsdist's burtle key: pinned values."""
    cache = PacketCache(100)
    keys = [cache.make_key(q, len(q) - 4) for q in (query(1), query(2), query(77))]
    assert [cache._pieces(k, True) for k in keys] == PINNED


PINNED = [3612472551, 2626992217, 759269952]   # from the hash as it was before the shortcuts


def test_every_key_hashed_at_once_as_one_by_one() -> None:
    """The pending keys' shards are worked out together (burtle_many, _many_pieces): the
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
        one_by_one = [cache._pieces(k, udp) for k in keys]
        assert cache._many_pieces(keys, udp) == one_by_one
        # the names' lengths as insert knows them, or unknown (0): the same hashes
        qlens = [len(k) - 10 - (4 if i % 3 == 2 else 15 if i % 3 == 0 else 27)
                 for i, k in enumerate(keys)]
        assert cache._many_pieces(keys, udp, qlens) == one_by_one
        assert cache._many_pieces(keys, udp, [0] * len(keys)) == one_by_one


def test_worked_out_shards_count_every_entry() -> None:
    cache = PacketCache(100, number_of_shards=4)
    fill(cache, 60, 1000.0)     # past the first batch (25-entry shards: at 25 pending)
    cache._resolve()
    assert not cache._pending[1]
    expected = [0] * 4
    for side in (0, 1):
        for key, entry in cache.items(side):
            assert entry.shard == cache._pieces(key, bool(side)) % 4
            expected[entry.shard] += 1
    assert cache._shard_counts == expected


def test_pieces_hashed_in_place_as_one_by_one() -> None:
    """burtle_lanes: each record's piece at `start`, read from the joined records, hashes
    as the piece alone does (sizes around the 12-byte blocks, pieces not at the start)."""
    import random

    from pydist.dns.burtle import burtle
    from pydist.dns.burtle_many import burtle_lanes, lanes_list, to_lanes
    rnd = random.Random(11)
    for start, size, stride in ((0, 1, 1), (3, 11, 20), (10, 12, 22), (10, 13, 40), (5, 30, 35)):
        records = [bytes(rnd.randrange(256) for _ in range(stride)) for _ in range(25)]
        inits = [rnd.randrange(1 << 32) for _ in records]
        got = lanes_list(burtle_lanes(b"".join(records), stride, len(records), start, size,
                                      to_lanes(inits)), len(records))
        assert got == [burtle(r[start:start + size], i) for r, i in zip(records, inits)]


def test_stored_count_follows_inserts_and_removals() -> None:
    """is_full_everywhere reads a count kept as entries come and go: it equals the entries
    through fills, replacements, expunges and expiry."""
    cache = PacketCache(100, number_of_shards=4)
    for step in range(3):
        fill(cache, 40 + 60 * step, 1000.0 + step)     # new names and replacements
        assert cache._stored == cache.get_stats()["entries"]
        cache.expunge_by_name("n3.full.test")
        cache.expunge(60)
        assert cache._stored == cache.get_stats()["entries"]
    fill(cache, 400, 1000.0)
    assert cache.is_full_everywhere() == (cache.get_stats()["entries"] == 100)
    cache.purge_expired(0, 10_000_000.0)
    assert cache._stored == 0 and not cache.is_full_everywhere()


def option_variants(i: int) -> list[tuple[bytes, int]]:
    """EDNS queries whose key is walked option by option: a cookie (its contents cut from
    the key), another option (kept), both, an rdlen read through a signed char, an option
    longer than its record."""
    q = query(i)
    base = q[:11] + b"\x01" + q[12:]
    opt = b"\x00\x00\x29\x10\x00\x00\x00\x00\x00"
    return [(base + opt + data, len(q) - 4) for data in (
        b"\x00\x0c" + b"\x00\x0a\x00\x08" + bytes([i % 256]) * 8,
        b"\x00\x08" + b"\x00\x03\x00\x04abcd",
        b"\x00\x14" + b"\x00\x0a\x00\x08" + bytes(8) + b"\x00\x03\x00\x04wxyz",
        b"\x00\x90" + b"\x00\x0a\x00\x08" + bytes(8),
        b"\x00\x0c" + b"\x00\x0a\x00\x10" + bytes(8))]


# from the walk as first written (before _layout), for 3 names x option_variants
PINNED_OPTIONS = [(20, (),
    [(2078606436, 2376123222), (3421160051, 2448290687), (1945892593, 1209259783),
    (3576161232, 3438452365), (1857244835, 2304261182), (1843214756, 1589448435),
    (2024766172, 1929398960), (3498805068, 946024741), (396333428, 456633788),
    (2706633611, 1136814813), (1804265047, 1823321527), (1684797183, 2867727556),
    (1426850108, 1464019776), (460108905, 3938421818), (1341708990, 1126678644)]),
    (20, (8,),
    [(2078606436, 2376123222), (3421160051, 2448290687), (1945892593, 1209259783),
    (3576161232, 3438452365), (1857244835, 2304261182), (1843214756, 1589448435),
    (2024766172, 1929398960), (3498805068, 946024741), (396333428, 456633788),
    (2706633611, 1136814813), (1804265047, 1823321527), (1684797183, 2867727556),
    (1426850108, 1464019776), (460108905, 3938421818), (1341708990, 1126678644)]),
    (5, (3, 10),
    [(2078606436, 2376123222), (3493142887, 4224877059), (1145619623, 859811019),
    (3576161232, 3438452365), (1857244835, 2304261182), (1843214756, 1589448435),
    (1961340056, 2469345631), (817155596, 2464450043), (396333428, 456633788),
    (2706633611, 1136814813), (1804265047, 1823321527), (4064454219, 2387231176),
    (1577433736, 1662938222), (460108905, 3938421818), (1341708990, 1126678644)])]


@pytest.mark.parametrize("shards,skipped,pinned", PINNED_OPTIONS)
def test_walked_keys_hash_as_before_alone_and_together(shards: int, skipped: tuple[int, ...],
                                                       pinned: list[tuple[int, int]]) -> None:
    """Keys whose options dnsdist walks (hashAfterQname) hashed piece by piece (_layout):
    the values of the walk as first written (pinned), one by one and all together."""
    cache = PacketCache(100, number_of_shards=shards, skip_options=skipped)
    keys, qlens = [], []
    for i in (1, 7, 300):
        for data, qname_end in option_variants(i):
            keys.append(cache.make_key(data, qname_end))
            qlens.append(qname_end - 12)
    assert [(cache._pieces(k, True), cache._pieces(k, False)) for k in keys] == pinned
    for udp, side in ((True, 0), (False, 1)):
        assert cache._many_pieces(keys, udp, qlens) == [p[side] for p in pinned]
        assert cache._many_pieces(keys, udp) == [p[side] for p in pinned]


def test_cut_and_walked_keys_of_one_shape_hashed_together() -> None:
    """A cookie's contents cut from one key, an empty cookie in another (walked, nothing
    cut): the same pieces and size, so one group; each still hashes as alone (this mix once
    broke the batch: a cut key is a 1-tuple)."""
    cache = PacketCache(100)
    q = query(5)
    base = q[:11] + b"\x01" + q[12:]
    opt = b"\x00\x00\x29\x10\x00\x00\x00\x00\x00"
    cut = cache.make_key(base + opt + b"\x00\x0c\x00\x0a\x00\x08" + bytes(8), len(q) - 4)
    walked = cache.make_key(base + opt + b"\x00\x04\x00\x0a\x00\x00", len(q) - 4)
    assert cut.__class__ is tuple and walked.__class__ is bytes
    assert cache._layout(cut) == cache._layout(walked) and len(cut[0]) == len(walked)
    for udp in (True, False):
        assert cache._many_pieces([cut, walked, cut], udp) == \
            [cache._pieces(k, udp) for k in (cut, walked, cut)]


def some_shard_full(cache: PacketCache) -> int:
    """Names stored until a shard is full and another is not; how many were offered."""
    i = 0
    while not (cache._room <= 0 and not cache._pending[1]):
        q = query(i)
        cache.insert(None, q, len(q) - 4, True, answer(q), 1000.0)
        i += 1
    assert not cache.is_full_everywhere()
    return i


def test_held_inserts_store_what_one_by_one_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """During a backend batch (hold_inserts) the inserts that need their shard wait and are
    done at its end, keys hashed together: the same entries kept and refused as deciding each
    at once, none hashed alone, later ones (a second answer for a held key) kept in order."""
    from pydist.cache import hold_inserts, release_inserts
    entries, shards, count = 100, 4, 300
    cache = PacketCache(entries, number_of_shards=shards)
    first = some_shard_full(cache)        # from here every new key needs its shard
    single = []
    real_one = PacketCache._pieces
    monkeypatch.setattr(PacketCache, "_pieces", lambda *a: single.append(1) or real_one(*a))
    hold_inserts()
    try:
        for i in range(first, count):
            q = query(i)
            assert cache.insert(None, q, len(q) - 4, True, answer(q), 1000.0) is None
            if i == first + 3:      # the same name again, later: stored after the first
                cache.insert(None, q, len(q) - 4, True, answer(q), 1001.0)
        assert single == [] and cache._held
    finally:
        release_inserts()
    assert not cache._held and not PacketCache.holding
    assert stored_keys(cache) == reference_stored(count, entries, shards)
    again = query(first + 3)
    entry = cache.entry_for(True, cache.make_key(again, len(again) - 4))
    assert entry is None or entry.added == 1001      # the later answer replaced the first


def test_a_held_insert_is_done_before_the_cache_is_read() -> None:
    """Anything reading the cache mid-batch (a Lua rule's getStats) sees the held inserts."""
    from pydist.cache import hold_inserts, release_inserts
    cache, alike = PacketCache(100, number_of_shards=4), PacketCache(100, number_of_shards=4)
    first = some_shard_full(cache)
    fill(alike, first, 1000.0)
    hold_inserts()
    try:
        for i in range(first, 200):
            q = query(i)
            cache.insert(None, q, len(q) - 4, True, answer(q), 1000.0)
        assert cache._held
        seen = cache.get_stats()["entries"]
        assert not cache._held
    finally:
        release_inserts()
    fill(alike, 200, 1000.0)
    assert seen == alike.get_stats()["entries"] and stored_keys(cache) == stored_keys(alike)
