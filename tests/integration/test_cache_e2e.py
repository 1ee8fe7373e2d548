"""Packet cache seen from a client: hits, TTL ageing, ID/case restore, negative TTL cap, keys."""
from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query, send_message
from tests.helpers.responder import Responder

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
pc = newPacketCache(1000, {maxTTL=300, minTTL=0, maxNegativeTTL=60})
getPool(""):setCache(pc)
"""


def _start(impl: str, start_proc: Starter, responder: Responder) -> DnsdistProcess:
    return start_proc(impl, CONF, {"backend": responder.address})


@pytest.mark.parametrize("impl", BOTH)
def test_hit_ages_ttl_and_restores_id_and_case(impl: str, start_proc: Starter,
                                               responder: Responder) -> None:
    """Second query is served from the cache with the client's ID and case; TTLs age."""
    proc = _start(impl, start_proc, responder)
    first = query(proc.addr(), "cached.example.", qid=1)
    assert first is not None and first.answer[0].ttl == 300
    second = query(proc.addr(), "CaChEd.ExAmPlE.", qid=2)
    assert second is not None and second.id == 2
    assert second.question[0].name.to_text() == "CaChEd.ExAmPlE."
    # the answer's owner is a compression pointer to the question: it follows the client's case
    assert second.answer[0].name.to_text() == "CaChEd.ExAmPlE."
    assert responder.count("cached.example.") == 1

    def aged() -> dns.message.Message | None:
        r = query(proc.addr(), "cached.example.", qid=3)
        return r if r is not None and r.answer[0].ttl < 300 else None
    r = poll_until(aged, timeout=3.0, interval=0.1)
    assert r.answer[0].ttl in (298, 299)  # type: ignore[attr-defined]
    assert responder.count("cached.example.") == 1


@pytest.mark.parametrize("impl", BOTH)
def test_negative_ttl_capped(impl: str, start_proc: Starter, responder: Responder) -> None:
    """NXDOMAIN with a 300 s SOA lives maxNegativeTTL=1 s in the cache; a positive answer stays."""
    proc = start_proc(impl, CONF.replace("maxNegativeTTL=60", "maxNegativeTTL=1"),
                      {"backend": responder.address})
    for name in ("a.nx.test.", "pos.example."):
        assert query(proc.addr(), name) is not None
    second = query(proc.addr(), "a.nx.test.")
    assert second is not None and second.rcode() == dns.rcode.NXDOMAIN
    assert second.authority[0].rdtype == dns.rdatatype.SOA
    assert responder.count("a.nx.test.") == 1  # a hit: negative answers are cached

    def refetched() -> bool:
        query(proc.addr(), "a.nx.test.")
        return responder.count("a.nx.test.") == 2
    poll_until(refetched, timeout=3.5, interval=0.2)
    assert query(proc.addr(), "pos.example.") is not None
    assert responder.count("pos.example.") == 1  # maxTTL=300 entry still there


@pytest.mark.parametrize("impl", BOTH)
def test_edns_do_and_transport_are_separate_entries(impl: str, start_proc: Starter,
                                                    responder: Responder) -> None:
    """Plain, EDNS+DO over UDP, and TCP queries for one name are three cache entries."""
    proc = _start(impl, start_proc, responder)
    for _ in range(2):
        assert query(proc.addr(), "keys.example.") is not None
        assert query(proc.addr(), "keys.example.", use_edns=0, want_dnssec=True) is not None
        assert query(proc.addr(), "keys.example.", tcp=True) is not None
    assert responder.count("keys.example.") == 3
    transports = sorted(t for n, t, _ in responder.queries if n == "keys.example.")
    assert transports == ["tcp", "udp", "udp"]


def test_cache_hit_over_tcp(start_proc: Starter, responder: Responder) -> None:
    """TCP queries are cached too (their own entry): the second TCP query does not reach it."""
    proc = _start("pydist", start_proc, responder)
    for qid in (10, 11):
        r = send_message(proc.addr(), _q("tcpcache.example.", qid), tcp=True)
        assert r is not None and r.id == qid
    assert responder.count("tcpcache.example.") == 1


def _q(name: str, qid: int) -> dns.message.Message:
    q = dns.message.make_query(name, "A")
    q.id = qid
    return q
