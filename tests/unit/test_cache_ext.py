"""pydist's cache features without sockets: serve-stale, single-flight refresh, prefetch and its
budget, snapshots (round trip, damage of every kind), the Redis value format, and that a cache
without pydist.cacheOptions is untouched. Time is passed in."""
from __future__ import annotations

import asyncio
import random

import dns.message
import dns.rcode
import pytest

from pydist import cache_ext, cache_snapshot
from pydist.cache import PacketCache
from pydist.cache_ext import CacheOptions, ExtendedPacketCache, Prefetch
from pydist.cache_redis import decode_value, encode_value, redis_key
from pydist.cache_stale import FAILURE_RECHECK, Refresher, stale_eligible
from pydist.stats import Stats
from tests.unit.test_cache import T0, answer, fill, qend, query, ttls_of


class FakeRefresher:
    """Records refreshes; single-flight like the real one (one per key until finished)."""

    def __init__(self) -> None:
        self.started: list[object] = []
        self.inflight: set = set()

    def may_start(self, udp: bool, key: object, now: float) -> bool:
        return (udp, key) not in self.inflight

    def start(self, udp: bool, key: object, query: bytes, qname_end: int) -> None:
        self.inflight.add((udp, key))
        self.started.append(key)

    def forget_failures(self, now: float) -> None:
        pass


def extended(stats: Stats | None = None, **opts: object) -> ExtendedPacketCache:
    pc = PacketCache(1000)
    cache_ext.enable(pc, CacheOptions(**opts), stats or Stats())
    assert isinstance(pc, ExtendedPacketCache)
    pc.ext.refresher = FakeRefresher()  # type: ignore[assignment]
    return pc


def look(pc: PacketCache, wire: bytes, now: float) -> bytearray | None:
    return pc.lookup(wire, qend(wire), True, now)[0]


def test_stale_served_within_window_with_ttl_30_and_one_refresh() -> None:
    pc = extended(stale_window=60)
    q = query()
    fill(pc, q, answer(q, ttls=(10,)))
    for i in range(20):                    # expired 5 s ago: stale, TTL 30, one refresh
        resp = look(pc, q, T0 + 15 + i * 0.01)
        assert resp is not None and ttls_of(resp) == [30]
    assert pc.ext.counters.stale_served == 20
    assert pc.ext.refresher.started == [pc.make_key(q, qend(q))]
    assert pc.ext.counters.stale_refreshes == 1
    assert look(pc, q, T0 + 10 + 60) is None       # the window is over: a miss
    assert look(pc, q, T0 + 10 + 59) is not None


def test_stale_only_for_eligible_rcodes() -> None:
    nx, nodata = query("nx.example."), query("nodata.example.")
    pc = extended(stale_window=60)
    fill(pc, nx, answer(nx, ttls=(), rcode=dns.rcode.NXDOMAIN, soa_ttl=10))
    fill(pc, nodata, answer(nodata, ttls=(), soa_ttl=10))
    assert look(pc, nx, T0 + 20) is None and look(pc, nodata, T0 + 20) is None
    assert pc.ext.counters.stale_served == 0
    pc = extended(stale_window=60, stale_rcodes=frozenset({0, 3}))
    fill(pc, nx, answer(nx, ttls=(), rcode=dns.rcode.NXDOMAIN, soa_ttl=10))
    fill(pc, nodata, answer(nodata, ttls=(), soa_ttl=10))
    assert look(pc, nx, T0 + 20) is not None and look(pc, nodata, T0 + 20) is not None


def test_stale_eligible_rules() -> None:
    q = query()
    assert stale_eligible(answer(q), None)
    assert not stale_eligible(answer(q, ttls=()), None)               # NODATA
    assert not stale_eligible(answer(q, rcode=2), None)
    assert stale_eligible(answer(q, rcode=2), frozenset({2}))
    assert not stale_eligible(b"\x00" * 5, None)


def test_purge_keeps_entries_that_may_still_be_served_stale() -> None:
    pc = extended(stale_window=60)
    q = query()
    fill(pc, q, answer(q, ttls=(10,)))
    assert pc.purge_expired(0, T0 + 30) == 0
    assert pc.purge_expired(0, T0 + 71) == 1


def test_without_options_nothing_changes() -> None:
    """A plain cache stays a PacketCache: expired means a miss, no counters are listed."""
    stats = Stats()
    pc = PacketCache(1000)
    q = query()
    fill(pc, q, answer(q, ttls=(10,)))
    assert type(pc) is PacketCache and pc.second_level is None
    assert look(pc, q, T0 + 15) is None
    assert not any(n.startswith("cache-stale") for n, _ in stats.snapshot())
    extended(stats, stale_window=5)
    assert "cache-stale-served" in dict(stats.snapshot())


def test_prefetch_once_when_hot_and_little_ttl_left_within_budget() -> None:
    pc = extended(prefetch=Prefetch(min_hits=3, remaining=10, qps=1))
    q1, q2 = query("one.example."), query("two.example.")
    fill(pc, q1, answer(q1, ttls=(100,)))
    fill(pc, q2, answer(q2, ttls=(100,)))
    for _ in range(5):
        look(pc, q1, T0 + 50)                   # hot, but half the TTL left
    assert pc.ext.refresher.started == []
    for _ in range(5):
        look(pc, q1, T0 + 95)                   # 5 % left: one prefetch, single-flight
    assert pc.ext.refresher.started == [pc.make_key(q1, qend(q1))]
    for _ in range(5):
        look(pc, q2, T0 + 95)                   # the budget of 1/s is spent
    assert pc.ext.counters.prefetches == 1
    assert pc.ext.counters.prefetch_over_budget >= 1


def test_prefetch_counts_exact_level_hits() -> None:
    pc = extended(prefetch=Prefetch(min_hits=2, remaining=50, qps=10))
    q = query()
    fill(pc, q, answer(q, ttls=(10,)))
    assert look(pc, q, T0 + 1) is not None      # full path: puts it in the exact level
    assert pc.lookup_exact(q, True, int(T0) + 8) is not None
    assert pc.ext.refresher.started == [pc.make_key(q, qend(q))]
    # the UDP drain loop's written-out exact hit would not count it: it asks lookup_exact
    assert pc.exact_parts(True) == ({},)
    plain = PacketCache(100)
    assert plain.exact_parts(True) is plain._parts[1]


def test_refresh_single_flight_failure_hold_and_no_overwrite() -> None:
    """The real Refresher: one fetch for many triggers; a SERVFAIL keeps the stale entry and
    holds new refreshes of the key for 30 s; a good answer replaces the entry."""
    async def run() -> None:
        pc = extended(stale_window=60)
        q = query()
        fill(pc, q, answer(q, ttls=(10,)))
        gate = asyncio.Event()
        replies = [answer(q, rcode=2), answer(q, ttls=(500,))]
        fetched = []

        async def fetch(wire: bytes) -> bytes:
            fetched.append(wire)
            await gate.wait()
            return replies.pop(0)
        r = Refresher(pc, pc.ext.counters, lambda: None, 1.0, print)
        r.loop = asyncio.get_running_loop()
        r._fetch = fetch  # type: ignore[method-assign]
        pc.ext.refresher = r
        for _ in range(50):
            assert look(pc, q, T0 + 15) is not None
        await asyncio.sleep(0)
        gate.set()
        while r.inflight:
            await asyncio.sleep(0.001)
        assert len(fetched) == 1 and pc.ext.counters.refresh_failures == 1
        assert ttls_of(look(pc, q, T0 + 16)) == [30]     # SERVFAIL did not replace it
        key = pc.make_key(q, qend(q))
        assert not r.may_start(True, key, r.failed[(True, key)] - 1)
        assert r.may_start(True, key, r.failed[(True, key)] + FAILURE_RECHECK)
        r.start(True, key, q, qend(q))
        while r.inflight:
            await asyncio.sleep(0.001)
        got = pc.lookup(q, qend(q), True, __import__("time").time())[0]
        assert got is not None and 400 < ttls_of(got)[0] <= 500
    asyncio.run(run())


def _filled(n: int = 50) -> PacketCache:
    pc = PacketCache(1000, parse_ecs=True)
    for i in range(n):
        q = query(f"n{i}.example.", qid=i)
        fill(pc, q, answer(q, ttls=(100 if i % 2 else 20,)))
    return pc


def test_snapshot_round_trip_ages_and_drops_expired(tmp_path) -> None:
    pc = _filled()
    path = str(tmp_path / "snap")
    assert cache_snapshot.save(pc, path, T0) == 50
    fresh = PacketCache(1000, parse_ecs=True)
    counters = cache_ext.CacheCounters()
    logs: list[str] = []
    assert cache_snapshot.load(fresh, path, T0 + 30, 0, counters, logs.append) == 25
    assert counters.snapshot_loaded == 25 and counters.snapshot_dropped == 25
    q = query("n1.example.", qid=7)
    resp = fresh.lookup(q, qend(q), True, T0 + 30)[0]
    assert resp is not None and ttls_of(resp) == [70]
    assert logs == [f"Loaded 25 entries from the cache snapshot '{path}'"]
    # with a stale window, entries expired less than the window ago are kept
    again = PacketCache(1000, parse_ecs=True)
    assert cache_snapshot.load(again, path, T0 + 30, 60, counters, logs.append) == 50


def test_merged_dumps_hold_each_entry_once_the_latest(tmp_path) -> None:
    """Worker processes' dumps of one cache merged (pydist.saveCache(pc, "file") with
    workers): the union, an entry both hold once, the one stored last."""
    a, b = PacketCache(1000), PacketCache(1000)
    for i in range(3):
        q = query(f"n{i}.example.", qid=i)
        fill(a, q, answer(q, ttls=(100,)))
    for i in range(2, 5):
        q = query(f"n{i}.example.", qid=i)
        fill(b, q, answer(q, ttls=(200,)), now=T0 + 10)
    data, n = cache_snapshot.merge([cache_snapshot.dump(a, T0)[0],
                                    cache_snapshot.dump(b, T0 + 10)[0], b"garbage"], T0 + 10)
    assert n == 5
    path = tmp_path / "merged"
    cache_snapshot.write(str(path), data)
    fresh = PacketCache(1000)
    assert cache_snapshot.load(fresh, str(path), T0 + 10, 0, cache_ext.CacheCounters(),
                               lambda _: None) == 5
    q = query("n2.example.", qid=9)
    assert ttls_of(fresh.lookup(q, qend(q), True, T0 + 10)[0]) == [200]


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign", "empty", "version"])
def test_damaged_snapshot_ignored_with_one_line(tmp_path, damage: str) -> None:
    pc = _filled()
    path = tmp_path / "snap"
    cache_snapshot.save(pc, str(path), T0)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x40
    elif damage == "foreign":
        data = bytearray(b"; dnsdist's packet cache dump follows\n" * 10)
    elif damage == "empty":
        data = bytearray()
    else:
        data[12:14] = b"\x00\x09"
    path.write_bytes(bytes(data))
    logs: list[str] = []
    fresh = PacketCache(1000)
    assert cache_snapshot.load(fresh, str(path), T0, 0, cache_ext.CacheCounters(),
                               logs.append) == 0
    assert fresh.entries == 0 and len(logs) == 1
    assert logs[0].startswith(f"Ignoring the cache snapshot '{path}': ")


def test_random_damage_never_raises(tmp_path) -> None:
    pc = _filled(10)
    path = tmp_path / "snap"
    cache_snapshot.save(pc, str(path), T0)
    good = path.read_bytes()
    rnd = random.Random(20)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rnd.randrange(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        data = data[: rnd.randrange(len(data) + 1)] if rnd.random() < 0.3 else data
        path.write_bytes(bytes(data))
        cache_snapshot.load(PacketCache(100), str(path), T0, 0, cache_ext.CacheCounters(),
                            lambda line: None)
    # garbage with a valid checksum: decoded records are checked too
    with pytest.raises(cache_snapshot.SnapshotError):
        body = cache_snapshot._HEAD.pack(cache_snapshot.MAGIC, 1, 0, 3) + b"\x01\xff"
        cache_snapshot.decode(body + __import__("zlib").crc32(body).to_bytes(4, "big"))


def test_missing_snapshot_is_a_first_start(tmp_path) -> None:
    logs: list[str] = []
    assert cache_snapshot.load(PacketCache(10), str(tmp_path / "none"), T0, 0,
                               cache_ext.CacheCounters(), logs.append) == 0
    assert logs == []


def test_redis_key_semantics_and_value_format() -> None:
    plain = query()
    do = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
    do.id = 1234
    cd = dns.message.make_query("www.example.com.", "A")
    cd.id, cd.flags = 1234, cd.flags | 0x10
    pc = PacketCache(10)
    keys = {redis_key(b"", True, pc.make_key(w, qend(w)), None)
            for w in (plain, do.to_wire(), cd.to_wire())}
    assert len(keys) == 3                                   # DO and CD are in the key
    k = pc.make_key(plain, qend(plain))
    assert redis_key(b"a", True, k, None) != redis_key(b"b", True, k, None)     # pool
    assert redis_key(b"", True, k, None) != redis_key(b"", False, k, None)      # transport
    assert redis_key(b"", True, k, (1, 24, b"\x0a\x00\x00")) != \
        redis_key(b"", True, k, (1, 24, b"\x0a\x00\x01"))                        # ECS
    resp = answer(plain)
    assert decode_value(encode_value(resp, 10, 20)) == (resp, 10, 20)
    for garbage in (b"", b"hello", b"PDC1" + b"\xff" * 30, None, 42, encode_value(resp, 30, 20)):
        assert decode_value(garbage) is None


def test_redis_value_must_answer_the_key() -> None:
    from pydist.cache_redis import answers_key
    pc = PacketCache(10)
    q, other = query("www.example.com."), query("other.example.com.")
    k = pc.make_key(q, qend(q))
    assert answers_key(answer(q), k)
    assert answers_key(answer(query("WWW.Example.COM.")), k)
    assert not answers_key(answer(other), k)
    assert not answers_key(answer(query("www.example.com.", "AAAA")), k)
    https = query("www.example.com.", "HTTPS")     # type 65: 0x41, an ASCII letter
    assert answers_key(answer(https), pc.make_key(https, qend(https)))


class FakeRedis:
    """mget/pipeline as redis-py's asyncio client has them; `delay` makes Redis slow."""

    def __init__(self, values: dict[bytes, bytes], delay: float = 0.0) -> None:
        self.values = values
        self.delay = delay
        self.mgets: list[list[bytes]] = []

    async def mget(self, keys: list[bytes]) -> list[bytes | None]:
        self.mgets.append(keys)
        await asyncio.sleep(self.delay)
        return [self.values.get(k) for k in keys]


def test_redis_lookups_of_one_iteration_share_one_mget_and_one_budget() -> None:
    from pydist.cache_redis import RedisLevel

    async def run() -> None:
        counters = cache_ext.CacheCounters()
        level = RedisLevel("redis://x", 0.05, b"", counters, print)
        level.loop = asyncio.get_running_loop()
        pc = PacketCache(10)
        q1, q2, q3 = query("a.example."), query("b.example."), query("c.example.")
        k1, k2, k3 = (pc.make_key(q, qend(q)) for q in (q1, q2, q3))
        far = int(__import__("time").time()) + 100
        level.client = FakeRedis({redis_key(b"", True, k1, None): encode_value(answer(q1), 1, far),
                                  redis_key(b"", True, k2, None): b"garbage"})
        got: list[object] = []
        for k in (k1, k2, k3):
            level.lookup(True, k, None, got.append)
        while len(got) < 3:
            await asyncio.sleep(0.001)
        assert len(level.client.mgets) == 1 and len(level.client.mgets[0]) == 3
        assert got[0][0] == answer(q1) and got[1] is None and got[2] is None
        assert (counters.redis_hits, counters.redis_errors, counters.redis_misses) == (1, 1, 1)
        level.client.delay = 0.5                     # slower than the budget of 50 ms
        late: list[object] = []
        level.lookup(True, k1, None, late.append)
        level.lookup(True, k2, None, late.append)
        await asyncio.sleep(0.2)
        assert late == [None, None] and counters.redis_timeouts == 2
        await asyncio.sleep(0.4)                     # the MGET ends later: nothing twice
        assert late == [None, None] and counters.redis_hits == 1
    asyncio.run(run())


class FakePipeline:
    def __init__(self, owner: "FakeWriter") -> None:
        self.owner = owner
        self.sets: list[tuple[bytes, bytes, int]] = []

    def set(self, key: bytes, value: bytes, ex: int) -> None:
        self.sets.append((key, value, ex))

    async def execute(self) -> None:
        self.owner.in_flight += 1
        self.owner.most = max(self.owner.most, self.owner.in_flight)
        await asyncio.sleep(0.02)
        self.owner.in_flight -= 1
        self.owner.batches.append(len(self.sets))


class FakeWriter:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.in_flight = self.most = 0

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


def test_redis_writes_gathered_into_few_pipelines() -> None:
    from pydist.cache_redis import MAX_PIPELINES, WRITE_BATCH, RedisLevel

    async def run() -> None:
        counters = cache_ext.CacheCounters()
        level = RedisLevel("redis://x", 0.05, b"", counters, print)
        level.loop = asyncio.get_running_loop()
        level.client = FakeWriter()
        now = __import__("time").time()
        for i in range(300):
            level.store(True, b"key%d" % i, None, b"\x00" * 20, int(now), int(now) + 60, now)
        while level.pending:
            await asyncio.sleep(0.005)
        assert sum(level.client.batches) == 300 == counters.redis_writes
        assert level.client.most <= MAX_PIPELINES
        assert len(level.client.batches) < 300 // WRITE_BATCH + 4
        level.store(True, b"late", None, b"\x00" * 20, int(now), int(now) + 60, now)
        while level.pending:      # one write alone goes out after the gathering delay
            await asyncio.sleep(0.005)
        assert level.client.batches[-1] == 1
    asyncio.run(run())
