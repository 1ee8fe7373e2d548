"""The one wire reader (pydist/dns/reader.py): agreement with dnspython on well-formed
messages, and on cut, flipped and looping data either a result or WireError, never another
exception, never a loop."""
from __future__ import annotations

import dns.edns
import dns.message
import dns.name
import dns.rrset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydist.dns import reader
from pydist.dns.reader import WireError

LABEL = st.binary(min_size=1, max_size=20)
NAMES = st.lists(LABEL, min_size=0, max_size=5)


def _answer(names: list[list[bytes]], ecs: bool = True) -> bytes:
    """A compressed answer with several records and an OPT with options (dnspython)."""
    qname = dns.name.Name([*(names[0] or [b"q"]), b""])
    msg = dns.message.make_query(qname, "A", use_edns=0, payload=1232,
                                 options=[dns.edns.ECSOption("192.0.2.0", 24)] if ecs else [])
    resp = dns.message.make_response(msg)
    resp.use_edns(0, payload=1232, options=msg.options)
    for i, labels in enumerate(names):
        owner = dns.name.Name([*labels, *qname.labels]) if labels else qname
        resp.answer.append(dns.rrset.from_text(owner, 300 + i, "IN", "A", f"192.0.2.{i + 1}"))
    resp.authority.append(dns.rrset.from_text(qname, 60, "IN", "SOA",
                                              f"ns.{qname} h.{qname} 1 2 3 4 5"))
    return resp.to_wire()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NAMES, min_size=1, max_size=4))
def test_records_agree_with_dnspython(names: list[list[bytes]]) -> None:
    try:
        wire = _answer(names)
    except (dns.name.NameTooLong, dns.name.LabelTooLong, ValueError):
        return
    parsed = dns.message.from_wire(wire)
    rrs = list(reader.records(wire))
    assert len(rrs) == sum(len(r) for r in parsed.answer + parsed.authority) + 1   # + OPT
    assert reader.records_end(wire) == len(wire)
    for rr in rrs:
        if rr.rtype != reader.TYPE_OPT:
            owner, after = reader.name_labels(wire, rr.start)
            assert after == rr.rdata - 10
            assert dns.name.Name([*owner, b""]) in {r.name for r in parsed.answer + parsed.authority}
    start, end = reader.locate_opt(wire)
    assert end == len(wire) and start >= 0
    opts = reader.options(wire, reader.name_end(wire, start) + 10, end)
    assert [c for c, _, _ in opts] == [8]
    offsets, min_ttl, soa = reader.ttl_walk(wire)
    assert soa and min_ttl == 60 and len(offsets) == len(rrs) - 1


def test_name_labels_follows_backward_pointers_only() -> None:
    wire = b"\x00" * 12 + b"\x03www\x07example\x00" + b"\xc0\x10"
    assert reader.name_labels(wire, 25) == ((b"example",), 27)
    assert reader.name_text(wire, 12) == "www.example."
    loop = b"\x00" * 12 + b"\xc0\x0c"                 # points at itself
    forward = b"\x00" * 12 + b"\xc0\x0e\x01a\x00"     # points ahead
    for bad in (loop, forward):
        try:
            reader.name_labels(bad, 12)
        except WireError as e:
            assert "backwards" in str(e)
        else:
            raise AssertionError("a non-backward pointer was followed")


def test_escape_and_parse_name_round_trip_dnsdist_texts() -> None:
    assert reader.escape_label(b"a.b\\c d\x7f") == "a\\.b\\\\c\\032d\\127"
    assert reader.parse_name("a\\.b\\\\c\\032d\\127.x") == (b"a.b\\c d\x7f", b"x")
    assert reader.labels_text(reader.parse_name("Www.Example.")) == "Www.Example."
    for text, message in (("a..b", "Found . in wrong position in DNSName a..b"),
                          ("x" * 64, "label too long to append"),
                          (".".join(["x" * 60] * 5), "name too long to append")):
        try:
            reader.parse_name(text)
        except reader.NameTextError as e:
            assert str(e) == message
        else:
            raise AssertionError(text)


def _all_walks(data: bytes) -> None:
    """Every reader function on data: a result or WireError."""
    calls = [
        lambda: reader.question(data), lambda: reader.qname_end(data),
        lambda: reader.qname_labels(data), lambda: reader.name_labels(data, 12),
        lambda: reader.name_text(data, 12), lambda: reader.name_end(data, 12),
        lambda: list(reader.records(data)), lambda: reader.records_end(data),
        lambda: reader.locate_opt(data), lambda: reader.options(data, 12, len(data)),
    ]
    for call in calls:
        try:
            call()
        except WireError:
            pass
    reader.ttl_walk(data)                          # never raises
    reader.message_end(data)                       # never raises
    assert reader.opt_after_question(data, 12) >= -1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NAMES, min_size=1, max_size=3), st.data())
def test_cut_and_flipped_answers_walk_or_raise_wire_error(names: list[list[bytes]],
                                                           data: st.DataObject) -> None:
    try:
        wire = bytearray(_answer(names))
    except (dns.name.NameTooLong, dns.name.LabelTooLong, ValueError):
        return
    cut = data.draw(st.integers(0, len(wire)))
    _all_walks(bytes(wire[:cut]))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    _all_walks(bytes(wire))


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_walk_or_raise_wire_error(data: bytes) -> None:
    _all_walks(data)


@given(st.integers(0, 0x3FFF))
def test_pointer_chains_always_end(target: int) -> None:
    """Pointers to pointers (the classic decompression loop) end in WireError or a name."""
    wire = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xc0\x0e" * 64 \
        + bytes((0xC0 | target >> 8, target & 0xFF))
    try:
        reader.name_labels(wire, 12)
    except WireError:
        pass


@given(st.lists(st.binary(min_size=0, max_size=70), max_size=8), st.binary(max_size=6))
def test_question_agrees_with_qname_end(labels: list[bytes], tail: bytes) -> None:
    """The written-out qname loop of question() accepts and refuses what qname_end does."""
    pkt = b"\x00" * 12 + b"".join(bytes((len(x),)) + x for x in labels) + tail
    try:
        end = reader.qname_end(pkt)
    except WireError:
        try:
            reader.question(pkt)
        except WireError:
            return
        raise AssertionError("question() took what qname_end refused")
    if end + 4 > len(pkt):
        return
    assert reader.question(pkt)[0] == end
    assert len(reader.labels_wire(reader.qname_labels(pkt))) == end - 12
