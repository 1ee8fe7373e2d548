"""PacketCache: dnsdist 1.7.3 key, insert, lookup, ageing, stale, expunge, stats, exact level.

Time is always passed in. The burtle keys below were read from real dnsdist 1.7.3's
``pc:dump()`` for the same dnspython-built queries.
"""

from __future__ import annotations

import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from pydist.cache import PacketCache
from pydist.dns.reader import name_end

T0 = 1_700_000_000.25


def query(name: str = "www.example.com.", qtype: str = "A", qid: int = 1234, **kw) -> bytes:
    q = dns.message.make_query(name, qtype, **kw)
    q.id = qid
    return q.to_wire()


def qend(wire: bytes) -> int:
    return name_end(wire, 12)


def answer(wire: bytes, ttls=(3600,), rcode: int = 0, soa_ttl: int | None = None,
           pad: int = 0) -> bytes:
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for i, t in enumerate(ttls):
        r.answer.append(dns.rrset.from_text(f"h{i}.example.com.", t, "IN", "A", "192.0.2.1"))
    if soa_ttl is not None:
        r.authority.append(dns.rrset.from_text("example.com.", soa_ttl, "IN", "SOA",
                                               "ns. host. 1 2 3 4 5"))
    for i in range(pad):
        r.additional.append(dns.rrset.from_text(f"p{i}.example.com.", 300, "IN", "TXT",
                                                '"' + "x" * 200 + '"'))
    return r.to_wire()


def fill(pc: PacketCache, wire: bytes, resp: bytes | None = None, udp: bool = True,
         now: float = T0, **kw) -> None:
    got, key = pc.lookup(wire, qend(wire), udp, now)
    assert got is None
    pc.insert(key, wire, qend(wire), udp, resp if resp is not None else answer(wire), now, **kw)


def ttls_of(resp: bytes) -> list[int]:
    m = dns.message.from_wire(bytes(resp))
    return [rr.ttl for rr in m.answer + m.authority]


def get(pc: PacketCache, wire: bytes, udp: bool = True, now: float = T0, **kw):
    return pc.lookup(wire, qend(wire), udp, now, **kw)[0]


# ---------------------------------------------------------------- hits, key, identity

def test_hit_patches_id_case_and_ages_ttls() -> None:
    pc = PacketCache(100)
    fill(pc, query(qid=1))
    client = query("WwW.ExAmPlE.CoM.", qid=4242)
    got = get(pc, client, now=T0 + 4)
    assert got is not None
    assert got[0:2] == client[0:2]
    assert got[12:qend(client)] == client[12:qend(client)]
    assert ttls_of(got) == [3596]
    assert (pc.hits, pc.misses) == (1, 1)
    pc.dont_age = True
    assert ttls_of(get(pc, client, now=T0 + 6)) == [3600]


@pytest.mark.parametrize("other", [
    dict(udp=False),
    dict(kw=dict(use_edns=0, want_dnssec=True)),
    dict(kw=dict(use_edns=False)),
    dict(kw=dict(flags=0)),  # RD cleared: the whole flags word is in the key
    dict(kw=dict(use_edns=0, payload=4096)),
])
def test_transport_flags_do_and_edns_separate_entries(other) -> None:
    pc = PacketCache(100)
    fill(pc, query(use_edns=0))
    wire = query(**other.get("kw", dict(use_edns=0)))
    assert get(pc, wire, udp=other.get("udp", True)) is None
    assert pc.misses == 2


def test_cookie_content_not_in_key_unless_cookie_hashing() -> None:
    def with_cookie(c: bytes) -> bytes:
        return query(use_edns=0, options=[dns.edns.GenericOption(10, c)])
    pc = PacketCache(100)
    fill(pc, with_cookie(b"AAAAAAAA"))
    assert get(pc, with_cookie(b"BBBBBBBB")) is not None
    assert get(pc, with_cookie(b"BBBBBBBBCCCCCCCC")) is None  # length is hashed
    hashing = PacketCache(100, cookie_hashing=True)
    fill(hashing, with_cookie(b"AAAAAAAA"))
    assert get(hashing, with_cookie(b"BBBBBBBB")) is None


def test_skip_options_excludes_ecs_content() -> None:
    def ecs(addr: str) -> bytes:
        return query(use_edns=0, options=[dns.edns.ECSOption(addr, 24)])
    plain = PacketCache(100)
    fill(plain, ecs("192.0.2.0"))
    assert get(plain, ecs("198.51.100.0")) is None
    skipping = PacketCache(100, skip_options=(8,))
    fill(skipping, ecs("192.0.2.0"))
    assert get(skipping, ecs("198.51.100.0")) is not None
    parsing = PacketCache(100, skip_options=(8,), parse_ecs=True)
    fill(parsing, ecs("192.0.2.0"))
    assert get(parsing, ecs("198.51.100.0")) is None
    assert parsing.lookup_collisions == 1
    assert get(parsing, ecs("192.0.2.0")) is not None


def test_rd_and_cd_come_from_the_original_query_flags() -> None:
    pc = PacketCache(100)
    after_rules = query(flags=0)  # a rule cleared RD
    fill(pc, after_rules, answer(query()))
    got = get(pc, after_rules, orig_flags=dns.flags.RD | dns.flags.CD)
    flags = int.from_bytes(got[2:4], "big")
    assert flags & dns.flags.RD and flags & dns.flags.CD and flags & dns.flags.QR
    got = get(pc, after_rules)
    assert not int.from_bytes(got[2:4], "big") & dns.flags.RD


def test_burtle_keys_match_real_dnsdist_dump(tmp_path) -> None:
    shapes = [
        ("noedns.example.", dict(use_edns=False, flags=0), True, 3497858915),
        ("edns.example.", dict(use_edns=0), True, 3686399942),
        ("Do.Example.", dict(use_edns=0, want_dnssec=True), True, 2288888310),
        ("cookie.example.", dict(use_edns=0, options=[dns.edns.GenericOption(10, b"12345678")]),
         True, 491945806),
        ("tcp.example.", dict(use_edns=0), False, 2331269092),
        ("ecs.example.", dict(use_edns=0, options=[dns.edns.ECSOption("192.0.2.0", 24)]), True,
         1461887811),
        # OPT rdlen 136: dnsdist reads its low byte through a signed char and hashes raw
        ("big.example.", dict(use_edns=0, options=[dns.edns.GenericOption(10, b"12345678"),
                                                   dns.edns.GenericOption(12, b"\0" * 120)]),
         True, 1717138917),
    ]
    pc = PacketCache(1000)
    for name, kw, udp, _key in shapes:
        fill(pc, query(name, **kw), udp=udp)
    path = tmp_path / "dump.txt"
    assert pc.dump(str(path), T0 + 10) == len(shapes)
    lines = path.read_text().splitlines()
    assert lines[:2] == ["; dnsdist's packet cache dump follows", ";"]
    keys = {line.split()[0]: int(line.split("key ")[1].split(",")[0]) for line in lines[2:]}
    assert keys == {name: key for name, _kw, _udp, key in shapes}
    assert "edns.example. 3590 A ; rcode 0, key 3686399942, length " in path.read_text()
    assert f"received over UDP 1, added {int(T0)}" in path.read_text()


# ---------------------------------------------------------------- insertion rules

def test_max_ttl_caps_lifetime() -> None:
    pc = PacketCache(100, max_ttl=100)
    fill(pc, query(), answer(query(), ttls=(5000,)))
    assert get(pc, query(), now=T0 + 99) is not None
    assert get(pc, query(), now=T0 + 100) is None


@pytest.mark.parametrize("rcode,soa", [(dns.rcode.NXDOMAIN, 7200), (dns.rcode.NOERROR, 7200)])
def test_negative_answers_capped_by_max_negative_ttl(rcode, soa) -> None:
    pc = PacketCache(100, max_negative_ttl=3600)
    fill(pc, query(), answer(query(), ttls=(), rcode=rcode, soa_ttl=soa))
    assert get(pc, query(), now=T0 + 3599) is not None
    assert get(pc, query(), now=T0 + 3600) is None


def test_answer_without_rr_is_not_cached() -> None:
    pc = PacketCache(100)
    fill(pc, query(), answer(query(), ttls=(), rcode=dns.rcode.NXDOMAIN))
    assert pc.entries == 0


def test_temporary_failures() -> None:
    pc = PacketCache(100)
    fill(pc, query(), answer(query(), ttls=(), rcode=dns.rcode.SERVFAIL))
    assert get(pc, query(), now=T0 + 59) is not None
    assert get(pc, query(), now=T0 + 60) is None
    fill(pc, query("r.example."), answer(query("r.example."), ttls=(), rcode=dns.rcode.REFUSED),
         temp_failure_ttl=5)
    assert get(pc, query("r.example."), now=T0 + 5) is None
    off = PacketCache(100, temporary_failure_ttl=0)
    fill(off, query(), answer(query(), ttls=(), rcode=dns.rcode.SERVFAIL))
    assert off.entries == 0


def test_min_ttl_counts_ttl_too_shorts() -> None:
    pc = PacketCache(100, min_ttl=100)
    fill(pc, query(), answer(query(), ttls=(50,)))
    assert pc.entries == 0 and pc.ttl_too_shorts == 1


def test_oversized_response_skipped() -> None:
    pc = PacketCache(100)
    big = answer(query(), pad=25)
    assert len(big) > 4096
    fill(pc, query(), big)
    assert pc.entries == 0


def test_full_cache_does_not_insert() -> None:
    pc = PacketCache(1)
    fill(pc, query("a.example."))
    fill(pc, query("b.example."))
    assert pc.entries == 1 and pc.is_full() and pc.to_string() == "1/1"


def test_existing_longer_lived_entry_kept_shorter_replaced() -> None:
    pc = PacketCache(100)
    wire = query()
    key = pc.make_key(wire, qend(wire))
    pc.insert(key, wire, qend(wire), True, answer(wire, ttls=(100,)), T0)
    pc.insert(key, wire, qend(wire), True, answer(wire, ttls=(50,)), T0 + 1)
    assert ttls_of(get(pc, wire, now=T0 + 2)) == [98]
    pc.insert(key, wire, qend(wire), True, answer(wire, ttls=(500,)), T0 + 2)
    assert ttls_of(get(pc, wire, now=T0 + 3)) == [499]
    assert pc.entries == 1


# ---------------------------------------------------------------- stale, removal, stats

def test_stale_entries_served_with_stale_ttl_within_window() -> None:
    pc = PacketCache(100, stale_ttl=30)
    fill(pc, query(), answer(query(), ttls=(10,)))
    assert get(pc, query(), now=T0 + 12) is None
    got = get(pc, query(), now=T0 + 12, stale_ok_for=5)
    assert ttls_of(got) == [30]
    assert get(pc, query(), now=T0 + 15, stale_ok_for=5) is None
    assert pc.lookup_exact(query(), True, int(T0) + 12) is None  # never stale from the fast level


def test_expunge_and_purge_expired() -> None:
    pc = PacketCache(100, number_of_shards=1)
    for i in range(10):
        fill(pc, query(f"n{i}.example."), answer(query(f"n{i}.example."), ttls=(10 + 10 * (i % 2),)))
    assert pc.purge_expired(0, T0 + 15) == 5
    assert pc.entries == 5
    assert pc.expunge(2) == 3 and pc.entries == 2
    assert pc.expunge() == 2 and pc.entries == 0


def test_maintenance_honours_percentage_and_keep_stale() -> None:
    pc = PacketCache(10, number_of_shards=1, keep_stale_data=True)
    for i in range(4):
        fill(pc, query(f"n{i}.example."), answer(query(f"n{i}.example."), ttls=(10,)))
    assert pc.maintenance(T0 + 20, any_server_up=False) == 0
    assert pc.maintenance(T0 + 20, cleaning_percentage=80) == 2  # down to 10*20/100 entries
    assert pc.maintenance(T0 + 20) == 2 and pc.entries == 0


def test_expunge_by_name() -> None:
    pc = PacketCache(100)
    for name, qtype in [("www.example.com.", "A"), ("www.example.com.", "AAAA"),
                        ("a.www.example.com.", "A"), ("other.org.", "A")]:
        fill(pc, query(name, qtype))
    assert pc.expunge_by_name("WWW.example.com", 28) == 1
    assert pc.expunge_by_name("www.example.com.", suffix_match=True) == 2
    assert pc.entries == 1 and get(pc, query("other.org.")) is not None


def test_stats_text_and_map_and_warnings() -> None:
    pc = PacketCache(100)
    fill(pc, query())
    get(pc, query())
    assert pc.print_stats() == ("Entries: 1/100\nHits: 1\nMisses: 1\nDeferred inserts: 0\n"
                                "Deferred lookups: 0\nLookup Collisions: 0\n"
                                "Insert Collisions: 0\nTTL Too Shorts: 0\n")
    assert pc.get_stats() == dict(entries=1, maxEntries=100, hits=1, misses=1, deferredInserts=0,
                                  deferredLookups=0, lookupCollisions=0, insertCollisions=0,
                                  ttlTooShorts=0)
    assert PacketCache(0).warnings == [
        "The number of entries in the packet cache is set to 0, raising to 1",
        "The number of entries (1) in the packet cache is smaller than the number of shards "
        "(20), decreasing the number of shards to 1"]
    five = PacketCache(5)
    assert five.number_of_shards == 5 and len(five.warnings) == 1


# ---------------------------------------------------------------- exact level

def test_exact_level_created_by_full_hit_and_consistent() -> None:
    pc = PacketCache(100)
    wire = query(qid=1)
    fill(pc, wire)
    now_s = int(T0)
    full = get(pc, query(qid=2), now=T0 + 3)
    fast = pc.lookup_exact(query(qid=77), True, now_s + 3)
    assert fast is not None and fast[:2] == query(qid=77)[:2]
    assert bytes(fast[2:]) == bytes(full[2:])
    assert pc.hits == 2
    assert ttls_of(pc.lookup_exact(query(qid=78), True, now_s + 10)) == [3590]
    assert pc.lookup_exact(query(qid=1), False, now_s + 10) is None  # other transport
    assert pc.lookup_exact(query("WWW.example.com.", qid=1), True, now_s + 10) is None
    assert pc.lookup_exact(query(qid=1), True, now_s + 3600) is None  # expired


def test_exact_level_invalidated_by_expunge_and_replacement() -> None:
    pc = PacketCache(100)
    wire = query()
    fill(pc, wire, answer(wire, ttls=(100,)))
    get(pc, wire, now=T0 + 1)
    assert pc.lookup_exact(wire, True, int(T0) + 1) is not None
    pc.insert(pc.make_key(wire, qend(wire)), wire, qend(wire), True, answer(wire, ttls=(500,)),
              T0 + 1)
    assert ttls_of(pc.lookup_exact(wire, True, int(T0) + 1)) == [500]   # the new entry
    assert ttls_of(get(pc, wire, now=T0 + 1)) == [500]
    pc.expunge_by_name("www.example.com.")
    assert pc.lookup_exact(wire, True, int(T0) + 1) is None


def test_exact_level_skipped_when_rules_changed_flags() -> None:
    pc = PacketCache(100)
    wire = query(flags=0)
    fill(pc, wire)
    get(pc, wire, orig_flags=dns.flags.RD)
    assert pc.lookup_exact(query(flags=dns.flags.RD), True, int(T0)) is None  # the client's
    assert pc.entry_for(1, pc.make_key(wire, qend(wire))).stamp < 0  # not made ready by it


def test_exact_index_bounded() -> None:
    pc = PacketCache(2, number_of_shards=1)
    fill(pc, query("a.example."))
    fill(pc, query("b.example."))
    for i in range(5):
        get(pc, query("a.example." if i % 2 else "b.example.", qid=i), now=T0)
        get(pc, query("A.example." if i % 2 else "B.example.", qid=i), now=T0)
    assert len(pc._exact[1]) <= 2


def test_hit_timings_printed() -> None:
    pc = PacketCache(1000)
    wire = query(use_edns=0)
    end = qend(wire)
    fill(pc, wire)
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        pc.lookup(wire, end, True, T0 + 1)
    full_us = (time.perf_counter() - start) / n * 1e6
    now_s = int(T0) + 1
    start = time.perf_counter()
    for _ in range(n):
        pc.lookup_exact(wire, True, now_s)
    exact_us = (time.perf_counter() - start) / n * 1e6
    print(f"\nlookup hit {full_us:.2f} us, lookup_exact hit {exact_us:.2f} us")
    assert pc.hits == 2 * n
