"""Load-balancing policies without sockets: distributions, tie-breaks, bounded load (facts §3)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from pydist import policies as P
from pydist.backend.server import DownstreamState
from pydist.dns.burtle import burtle_ci
from pydist.dns.wire import text_to_wire
from pydist.dnsquestion import DNSQuestion


S = P.PolicySettings()     # the knobs the policies read (a registry's, in pydist)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test starts from dnsdist's defaults (perturbation fixed at 0)."""
    S.__init__()
    S.hash_perturbation = 0
    yield


def server(weight: int = 1, order: int = 1, up: bool = True, outstanding: int = 0,
           qps: int | None = None, uid: str | None = None) -> DownstreamState:
    s = DownstreamState("127.0.0.1", 53, {"weight": weight, "order": order, "qps": qps,
                                          "id": uid})
    s.up_status = up
    s.outstanding = outstanding
    return s


def dq(name: str) -> DNSQuestion:
    wire = text_to_wire(name)
    data = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + wire + b"\x00\x01\x00\x01"
    return DNSQuestion(data, 12 + len(wire), 1, 1, ("127.0.0.1", 5300))


NAMES = [f"host{i}.example.net." for i in range(3000)]


def shares(picks: Counter, servers: list[DownstreamState]) -> list[float]:
    total = sum(picks.values())
    return [picks[id(s)] / total for s in servers]


def test_whashed_is_proportional_to_weight_and_sticky() -> None:
    pool = [server(1), server(2), server(5)]
    picks = Counter(id(P.whashed(pool, dq(n), S)) for n in NAMES)
    for got, want in zip(shares(picks, pool), (1 / 8, 2 / 8, 5 / 8), strict=True):
        assert abs(got - want) < 0.04, (got, want)
    # one name always lands on the same server, whatever its case
    first = P.whashed(pool, dq("Sticky.Example."), S)
    assert all(P.whashed(pool, dq(n), S) is first for n in ("sticky.example.", "STICKY.EXAMPLE."))


def test_whashed_follows_the_lookup2_hash_and_the_perturbation() -> None:
    """r = burtleCI(wire qname, perturbation) % total weight, first cumulative sum above r."""
    pool = [server(3), server(4)]
    for pert in (0, 12345, 0xFFFFFFFF):
        S.hash_perturbation = pert
        for n in NAMES[:200]:
            r = burtle_ci(text_to_wire(n), pert) % 7
            assert P.whashed(pool, dq(n), S) is pool[0 if r < 3 else 1]
    S.hash_perturbation = 1
    a = [P.whashed(pool, dq(n), S) for n in NAMES[:200]]
    S.hash_perturbation = 2
    b = [P.whashed(pool, dq(n), S) for n in NAMES[:200]]
    assert a != b


def test_whashed_skips_down_servers() -> None:
    pool = [server(1, up=False), server(1)]
    assert {id(P.whashed(pool, dq(n), S)) for n in NAMES[:50]} == {id(pool[1])}
    assert P.whashed([server(up=False)], dq("x."), S) is None


def test_wrandom_is_proportional_to_weight() -> None:
    pool = [server(1), server(3)]
    picks = Counter(id(P.wrandom(pool, None, S)) for _ in range(4000))
    got = shares(picks, pool)
    assert abs(got[0] - 0.25) < 0.04 and abs(got[1] - 0.75) < 0.04


def test_weighted_balancing_factor_caps_a_loaded_server() -> None:
    """target = (1 + Σ outstanding) / Σ weight × factor; above target × weight: not eligible."""
    busy, idle = server(1, outstanding=10), server(1)
    pool = [busy, idle]
    S.weighted_balancing_factor = 1.5    # target 11/2*1.5 = 8.25 < 10
    assert {id(P.wrandom(pool, None, S)) for _ in range(200)} == {id(idle)}
    assert {id(P.whashed(pool, dq(n), S)) for n in NAMES[:200]} == {id(idle)}
    S.weighted_balancing_factor = 2.0    # target 11 >= 10: both eligible again
    assert {id(P.wrandom(pool, None, S)) for _ in range(200)} == {id(busy), id(idle)}


def uuid(i: int) -> str:
    return f"4a3b2c1d-0000-4000-8000-{i:012x}"


def test_chashed_is_stable_when_a_server_is_added() -> None:
    a, b, c = (server(100, uid=uuid(i)) for i in range(3))
    before = {n: P.chashed([a, b], dq(n), S) for n in NAMES}
    after = {n: P.chashed([a, b, c], dq(n), S) for n in NAMES}
    moved = [n for n in NAMES if after[n] is not before[n]]
    assert all(after[n] is c for n in moved)          # only to the newcomer, never between old ones
    assert 0.2 < len(moved) / len(NAMES) < 0.45       # about a third of the names move


def test_chashed_ring_points_and_wraparound() -> None:
    """A server owns lookup2("<uuid>-<k>") for k = weight..1; past the last point: the smallest."""
    a, b = server(2, uid=uuid(1)), server(2, uid=uuid(2))
    pts = {burtle_ci(f"{uuid(1)}-{k}".encode(), 0): a for k in (1, 2)}
    pts.update({burtle_ci(f"{uuid(2)}-{k}".encode(), 0): b for k in (1, 2)})
    ring = sorted(pts)
    for n in NAMES[:300]:
        h = burtle_ci(text_to_wire(n), 0)
        owner = pts[next((p for p in ring if p >= h), ring[0])]
        assert P.chashed([a, b], dq(n), S) is owner
    assert P.chashed_from_hash([a, b], 0xFFFFFFFF + 1, S) is pts[ring[0]]


def test_chashed_uses_canonical_lowercase_uuid() -> None:
    s = server(5, uid=uuid(7).upper())
    assert s.uuid == uuid(7)


def test_chashed_balancing_factor_and_down_servers() -> None:
    a, b = server(100, uid=uuid(1), outstanding=50), server(100, uid=uuid(2))
    S.consistent_hashing_balancing_factor = 1.0   # target 51/200 per weight: a is over
    assert {id(P.chashed([a, b], dq(n), S)) for n in NAMES[:100]} == {id(b)}
    S.consistent_hashing_balancing_factor = 0.0
    b.up_status = False
    assert {id(P.chashed([a, b], dq(n), S)) for n in NAMES[:100]} == {id(a)}
    a.up_status = False
    assert P.chashed([a, b], dq("x."), S) is None


def test_least_outstanding_prefers_the_faster_server_on_ties() -> None:
    slow, fast = server(), server()
    slow.latency_usec, fast.latency_usec = 900.0, 100.0
    assert P.least_outstanding([slow, fast]) is fast
    fast.outstanding = 1
    assert P.least_outstanding([slow, fast]) is slow
    # exact tie: the first in pool order
    twin = server()
    twin.latency_usec = 900.0
    assert P.least_outstanding([slow, twin]) is slow


def test_first_available_honours_qps_limits() -> None:
    limited, other = server(order=1, qps=3), server(order=2)
    picks = []
    for _ in range(10):          # the packet path spends the token of a query it sends
        picks.append(P.first_available([limited, other]))
        picks[-1].qps.check()
    assert picks[:3] == [limited] * 3                 # the burst: 3 tokens
    assert all(p is other for p in picks[3:])         # then skipped
    assert P.first_available([limited, other]) is other   # looking spends no token
    zero = server(order=1, qps=0)                     # explicit qps=0: never a token
    assert P.first_available([zero, other]) is other
    other.up_status = False
    # nobody has a token: leastOutstanding over the pool (the limited server is up)
    assert P.first_available([limited, other]) is limited


def test_round_robin_and_fail_on_no_server() -> None:
    a, b = server(up=False), server(up=False)
    assert P.round_robin([a, b], None, S) in (a, b)            # none up: all servers are candidates
    S.round_robin_fail_on_no_server = True
    assert P.round_robin([a, b], None, S) is None
    b.up_status = True
    assert {id(P.round_robin([a, b], None, S)) for _ in range(4)} == {id(b)}
    assert P.round_robin([], None, S) is None


def test_qname_hash_memo_is_bounded_and_follows_the_perturbation() -> None:
    for i in range(P.HASH_MEMO_MAX + 10):
        P.qname_hash(dq(f"m{i}.memo."), S.hash_perturbation)
    assert len(P._HASHES) <= P.HASH_MEMO_MAX
    S.hash_perturbation = 99
    assert P.qname_hash(dq("m1.memo."), S.hash_perturbation) == burtle_ci(text_to_wire("m1.memo."), 99)
