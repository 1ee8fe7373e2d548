"""Dynamic block tables and rate rules without sockets: inserts, lookups, expiry, purge, the
showDynBlocks layout, and dynBlockRulesGroup over a hand-filled ring (time passed in)."""
from __future__ import annotations

import ipaddress

import dnslib

from pydist.dynblock_rules import DynBlockRulesGroup, RateRule
from pydist.dynblocks import (DROP, NOOP, NONE, REFUSED, DynBlocks, count_queries, host_network,
                              over_rate)
from pydist.rings import Rings
from pydist.rules.names import DNSName
from pydist.stats import Stats

NOW = 1_000_000.0


def table() -> tuple[DynBlocks, list[str]]:
    logged: list[str] = []
    return DynBlocks(Stats(), logged.append), logged


def test_insert_lookup_and_expiry() -> None:
    b, logged = table()
    assert not b.active
    b.insert_network(host_network("192.0.2.1"), "why", 10, NONE, NOW)
    assert b.active and b.stats.dyn_block_nmg_size == 1
    assert logged == ["Inserting dynamic block for 192.0.2.1 for 10 seconds: why"]
    hit = b.lookup_address("192.0.2.1", NOW + 1)
    assert hit is not None and b.action_of(hit) == DROP
    assert b.lookup_address("192.0.2.2", NOW + 1) is None
    assert b.lookup_address("::ffff:192.0.2.1", NOW + 1) is hit
    assert b.lookup_address("192.0.2.1", NOW + 10) is None        # expired, not yet purged
    assert b.stats.dyn_block_nmg_size == 1
    b.purge(NOW + 10)
    assert not b.active and b.stats.dyn_block_nmg_size == 0


def test_longer_block_kept_and_count_inherited() -> None:
    b, logged = table()
    net = host_network("192.0.2.1")
    b.insert_network(net, "long", 60, REFUSED, NOW)
    b.nets[net].blocks = 5
    assert not b.insert_network(net, "short", 10, DROP, NOW + 1)    # would shorten it
    assert b.insert_network(net, "longer", 120, DROP, NOW + 1)
    assert b.nets[net].blocks == 5 and b.nets[net].reason == "longer"
    assert len(logged) == 1                                        # refresh of a live block: quiet


def test_warning_entries_never_replace_blocks() -> None:
    b, logged = table()
    net = host_network("192.0.2.1")
    b.insert_network(net, "warn", 10, DROP, NOW, warning=True, shown=str(net))
    assert b.nets[net].action == NOOP and b.nets[net].warning
    assert logged == ["Inserting (warning) dynamic block for 192.0.2.1/32 for 10 seconds: warn"]
    b.insert_network(net, "block", 10, DROP, NOW)
    assert not b.insert_network(net, "warn", 10, DROP, NOW, warning=True)
    assert not b.nets[net].warning


def test_suffix_blocks_and_show() -> None:
    b, logged = table()
    name = DNSName.from_text("Blocked.Test.")
    b.insert_name(name.key, str(name), "smt", 40, REFUSED, NOW)
    assert logged == ["Inserting dynamic block for Blocked.Test for 40 seconds: smt"]
    assert b.lookup_name(DNSName.from_text("a.blocked.test").key, NOW) is not None
    assert b.lookup_name(DNSName.from_text("blocked.test.org").key, NOW) is None
    b.insert_network(ipaddress.ip_network("10.0.0.0/8"), "net", 30, NONE, NOW)
    assert b.lookup_address("10.1.2.3", NOW) is not None
    assert b.show(NOW + 1.5) == [
        "What                      Seconds   Blocks Warning    Action               Reason",
        "10.0.0.0/8                     28        0 false      Drop                 net",
        "Blocked.Test.                  38        0 false      Send Refused         smt"]
    b.clear()
    assert b.show(NOW) == b.show(NOW)[:1] and not b.active


def _ring(entries: list[tuple[float, str, str]]) -> Rings:
    rings = Rings(100)
    for t, host, qtype in entries:
        rings.queries.append((t, (host, 5300), dnslib.DNSRecord.question("x.test", qtype).pack(), 0))
    return rings


def test_counts_and_rate_threshold() -> None:
    rings = _ring([(NOW - 5, "192.0.2.1", "A")] + [(NOW - 0.5, "192.0.2.1", "A")] * 21
                  + [(NOW - 0.5, "192.0.2.2", "ANY")] * 3)
    counts = count_queries(rings, 1, NOW)
    assert counts[host_network("192.0.2.1")] == 21
    assert list(over_rate(counts, 20, 1, rings, NOW)) == [host_network("192.0.2.1")]
    assert count_queries(rings, 1, NOW, qtype=255) == {host_network("192.0.2.2"): 3}
    assert count_queries(rings, 10, NOW, masks=(24, 64)) == {host_network("192.0.2.0", 24): 25}


def test_group_apply_blocks_and_excludes() -> None:
    b, logged = table()
    rings = _ring([(NOW - 0.5, "192.0.2.1", "A")] * 30 + [(NOW - 0.5, "198.51.100.1", "A")] * 30
                  + [(NOW - 0.5, "203.0.113.1", "A")] * 15)
    g = DynBlockRulesGroup(b, rings)
    g.add(RateRule("query", 10, 2, "rate", 5, NONE, warning=5))
    g.excluded.add("198.51.100.0/24")
    g.apply(NOW)
    assert b.lookup_address("198.51.100.1", NOW) is None
    blocked = b.lookup_address("192.0.2.1", NOW)
    warned = b.lookup_address("203.0.113.1", NOW)
    assert blocked is not None and not blocked.warning and b.action_of(blocked) == DROP
    assert warned is not None and warned.warning and warned.action == NOOP
    assert "Inserting dynamic block for 192.0.2.1/32 for 5 seconds: rate" in logged
    assert "Inserting (warning) dynamic block for 203.0.113.1/32 for 5 seconds: rate" in logged
    g.included.add("198.51.100.1/32")
    g.apply(NOW)
    assert b.lookup_address("198.51.100.1", NOW) is not None


def test_group_without_rings_does_nothing() -> None:
    b, _ = table()
    g = DynBlockRulesGroup(b, lambda: None)
    g.add(RateRule("query", 0, 1, "x", 5))
    g.apply(NOW)
    assert not b.active


def test_response_tree_post_order_and_counts() -> None:
    from pydist.dynblock_rules import response_tree
    rings = Rings(100)
    for name, rcode in (("a.nx.test.", 3), ("B.nx.test.", 3), ("ok.test.", 0)):
        q = dnslib.DNSRecord.question(name, "A")
        r = q.reply()
        r.header.rcode = rcode
        rings.responses.append((NOW - 1, ("192.0.2.1", 53), r.pack(), 100.0, "s"))
    rings.responses.append((NOW - 1, ("192.0.2.1", 53), dnslib.DNSRecord.question(
        "t.test.", "A").pack(), -1, None))                    # a timeout: a drop
    seen: list[tuple] = []
    response_tree(rings, 10, NOW).visit(
        lambda n, own, tot: seen.append((n.fullname, n.labels_count, own.queries, tot.queries,
                                         tot.nxdomains, tot.drops)))
    assert seen == [("a.nx.test.", 3, 1, 1, 1, 0), ("B.nx.test.", 3, 1, 1, 1, 0),
                    ("nx.test.", 2, 0, 2, 2, 0), ("ok.test.", 2, 1, 1, 0, 0),
                    ("t.test.", 2, 1, 1, 0, 1), ("test.", 1, 0, 4, 2, 1), ("", 0, 0, 4, 2, 1)]


def test_most_specific_block_wins_v4_and_v6() -> None:
    from pydist.dynblocks import NXDOMAIN
    b, _ = table()
    b.insert_network(ipaddress.ip_network("10.0.0.0/8"), "wide", 60, DROP, NOW)
    b.insert_network(host_network("10.1.2.3"), "narrow", 60, NXDOMAIN, NOW)
    b.insert_network(ipaddress.ip_network("2001:db8::/64"), "v6", 60, REFUSED, NOW)
    assert b.lookup_address("10.1.2.3", NOW).reason == "narrow"
    assert b.lookup_address("10.9.9.9", NOW).reason == "wide"
    assert b.lookup_address("::ffff:10.9.9.9", NOW).reason == "wide"
    assert b.lookup_address("2001:db8::42%eth0", NOW).reason == "v6"
    assert b.lookup_address("2001:db8:1::1", NOW) is None
    assert b.lookup_address("not-an-ip", NOW) is None
