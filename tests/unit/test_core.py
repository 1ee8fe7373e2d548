"""Unit tests of the engine's small pure pieces: addresses, wire parsing, stats, health states."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from pydist.backend.healthcheck import update_health
from pydist.backend.server import DownstreamState
from pydist.dns.netmask import AddressError, NetmaskGroup, parse_address
from pydist.dns.synth import notimp_for_empty, self_answer
from pydist.dns.wire import WireError, parse_question, question_end, text_to_wire
from pydist.policies import PolicySettings, first_available, least_outstanding, round_robin
from pydist.stats import ENTRY_NAMES, Stats, format_dump_stats


@pytest.mark.parametrize("text,expected", [
    ("1.2.3.4", ("1.2.3.4", 53)), ("1.2.3.4:5300", ("1.2.3.4", 5300)),
    ("[::1]:5300", ("::1", 5300)), ("::1", ("::1", 53)), ("[2001:db8::1]", ("2001:db8::1", 53)),
])
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("bad", ["dns.google", "1.2.3.4:x", "[::1", "300.1.1.1", ""])
def test_parse_address_refuses(bad: str) -> None:
    with pytest.raises(AddressError, match="Unable to convert presentation address"):
        parse_address(bad)


def test_netmask_group_sorted_and_matching() -> None:
    g = NetmaskGroup(["::1/128", "192.168.0.0/16", "10.0.0.0/8"])
    assert g.to_strings() == ["10.0.0.0/8", "192.168.0.0/16", "::1/128"]
    assert g.match("10.1.2.3") and g.match("::1") and not g.match("11.0.0.1")
    g.remove("10.0.0.0/8")
    assert not g.match("10.1.2.3")  # the memo is cleared on change


def _query(name: str = "Example.COM.", qtype: int = 1) -> bytes:
    return (b"\x12\x34\x01\x20\x00\x01\x00\x00\x00\x00\x00\x00" + text_to_wire(name)
            + qtype.to_bytes(2, "big") + b"\x00\x01")


def test_parse_question() -> None:
    q = _query()
    end, qtype, qclass = parse_question(q)
    assert q[12:end] == b"\x07Example\x03COM\x00" and (qtype, qclass) == (1, 1)


@pytest.mark.parametrize("bad", [b"\x00" * 12, b"\x00" * 12 + b"\x05ab", b"\x00" * 12 + b"\xc0\x0c\x00\x01\x00\x01",
                                 b"\x00" * 12 + b"\x01a\x00\x00"])
def test_parse_question_refuses_garbage(bad: bytes) -> None:
    with pytest.raises(WireError):
        parse_question(bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=70), max_size=8), st.binary(max_size=6))
def test_parse_question_agrees_with_question_end(labels: list[bytes], tail: bytes) -> None:
    """The inlined qname loop accepts and refuses exactly what question_end does."""
    pkt = b"\x00" * 12 + b"".join(bytes([len(lab)]) + lab for lab in labels) + tail
    try:
        end = question_end(pkt)
    except WireError:
        end = None
    if end is None or end + 4 > len(pkt):
        with pytest.raises(WireError):
            parse_question(pkt)
    else:
        assert parse_question(pkt) == (end, pkt[end] << 8 | pkt[end + 1],
                                       pkt[end + 2] << 8 | pkt[end + 3])


def test_self_answer_keeps_flags_and_readds_edns() -> None:
    q = _query() + b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00"
    q = q[:10] + b"\x00\x01" + q[12:]
    end = parse_question(q)[0]
    a = self_answer(q, end, 2, True, 1232)
    assert a[:2] == q[:2]
    assert a[2] & 0x80 and a[2] & 0x01 and not a[3] & 0x80   # QR, RD kept, RA not set
    assert a[3] & 0x0F == 2 and a[3] & 0x20                   # SERVFAIL, AD kept
    assert a[10:12] == b"\x00\x01" and a[-11:-6] == b"\x00\x00\x29\x04\xd0"  # OPT, payload 1232
    assert a[-4] & 0x80                                        # DO copied
    assert notimp_for_empty(q)[3] & 0x0F == 4


def test_dump_stats_layout() -> None:
    text = format_dump_stats(Stats().snapshot())
    lines = text.splitlines()
    assert len(ENTRY_NAMES) == 64 and len(lines) == 32
    assert lines[0].startswith("acl-drops" + " " * 26 + "\t          0    ")
    assert lines[0][51:].startswith("noncompliant-responses")


def test_latency_buckets_and_zero_samples() -> None:
    s = Stats()
    s.latency_sample(500)
    s.latency_sample(25000)
    s.zero_latency_samples(3)
    assert (s.latency0_1, s.latency10_50, s.latency_count, s.latency_sum) == (4, 1, 5, 25)
    assert 0 < s.latency_avg100 < 255


def _server(order: int = 1, up: bool = True, outstanding: int = 0) -> DownstreamState:
    s = DownstreamState("127.0.0.1", 53, {"order": order})
    s.up_status = up
    s.outstanding = outstanding
    return s


def test_least_outstanding_tie_breaks() -> None:
    a, b, c = _server(2), _server(1), _server(1, outstanding=1)
    assert least_outstanding([a, b, c]) is b
    b.up_status = False
    assert least_outstanding([a, b, c]) is a   # outstanding before order
    assert least_outstanding([_server(up=False)]) is None


def test_first_available_and_round_robin() -> None:
    a, b = _server(1, up=False), _server(2)
    assert first_available([a, b]) is b
    rr = PolicySettings()
    picks = {id(round_robin([a, b], None, rr)) for _ in range(4)}
    assert picks == {id(b)}


def test_health_state_machine_rise_and_failures() -> None:
    s = DownstreamState("127.0.0.1", 53, {"rise": 2, "maxCheckFailures": 3})
    logs: list[str] = []
    update_health(s, True, True, logs.append)
    assert s.up_status and logs == ["Marking downstream 127.0.0.1:53 as 'up'"]
    for _ in range(2):
        update_health(s, False, False, logs.append)
    assert s.up_status
    update_health(s, False, False, logs.append)
    assert not s.up_status and logs[-1].endswith("as 'down'")
    update_health(s, True, False, logs.append)
    assert not s.up_status
    update_health(s, True, False, logs.append)
    assert s.up_status and len(logs) == 3


def test_netmask_group_listed_in_dnsdist_trie_order() -> None:
    """As real dnsdist 1.7.3 prints its ACL: in-order over the bit trie, IPv4 first."""
    from pydist.dns.netmask import NetmaskGroup
    masks = ["10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
             "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10", "0.0.0.0/0", "::/0",
             "10.128.0.0/9", "10.0.0.0/9"]
    assert NetmaskGroup(masks).to_strings() == [
        "10.0.0.0/9", "10.0.0.0/8", "10.128.0.0/9", "100.64.0.0/10", "127.0.0.0/8", "0.0.0.0/0",
        "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "::/0", "fc00::/7",
        "fe80::/10"]
