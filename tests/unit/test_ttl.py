"""TTL walks over wire answers: min TTL, SOA detection, ageing, stale TTLs, garbage tolerance."""

from __future__ import annotations

import dns.message
import dns.rrset
from hypothesis import given, settings, strategies as st

import pytest

from pydist.dns import ttl
from pydist.dns.reader import WireError, name_end


def _answer(ttls=(300, 60), auth_soa: int | None = None, edns: bool = True, rcode: int = 0) -> bytes:
    q = dns.message.make_query("www.example.com.", "A", use_edns=0 if edns else False)
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for i, t in enumerate(ttls):
        r.answer.append(dns.rrset.from_text(f"h{i}.example.com.", t, "IN", "A", f"192.0.2.{i + 1}"))
    if auth_soa is not None:
        r.authority.append(dns.rrset.from_text(
            "example.com.", auth_soa, "IN", "SOA", "ns. host. 1 2 3 4 5"))
    return r.to_wire()


def _ttls(wire: bytes) -> list[int]:
    msg = dns.message.from_wire(wire)
    return [rr.ttl for rr in msg.answer + msg.authority]


def test_min_ttl_spans_sections_and_ignores_opt() -> None:
    assert ttl.min_ttl(_answer((300, 60))) == 60
    assert ttl.min_ttl(_answer((300,), auth_soa=30)) == 30
    assert ttl.min_ttl(_answer(())) is None  # only an OPT RR: no TTL found


def test_soa_in_authority() -> None:
    assert ttl.has_soa_in_authority(_answer((), auth_soa=100))
    assert not ttl.has_soa_in_authority(_answer((100,)))


def test_age_floors_at_zero_and_keeps_opt() -> None:
    wire = bytearray(_answer((300, 60)))
    ttl.age_ttls(wire, 100)
    assert _ttls(bytes(wire)) == [200, 0]
    assert dns.message.from_wire(bytes(wire)).edns == 0


def test_offsets_then_age_and_set() -> None:
    wire = _answer((300,), auth_soa=90)
    offs = ttl.ttl_offsets(wire)
    assert len(offs) == 2
    buf = bytearray(wire)
    ttl.age_ttls_at(buf, offs, 10)
    assert _ttls(bytes(buf)) == [290, 80]
    ttl.set_ttls(buf, 60)
    assert _ttls(bytes(buf)) == [60, 60]


def test_skip_name_handles_pointer_and_truncation() -> None:
    assert name_end(b"\x03www\x00", 0) == 5
    assert name_end(b"\x03www\xc0\x0c", 0) == 6
    with pytest.raises(WireError):
        name_end(b"\x03ww", 0)


def skip_name(resp: bytes, pos: int) -> int:
    try:
        return name_end(resp, pos)
    except WireError:
        return -1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_raises(data: bytes) -> None:
    buf = bytearray(data)
    ttl.age_ttls(buf, 5)
    ttl.set_ttls(buf, 5)
    assert len(buf) == len(data)
    value = ttl.min_ttl(data)
    assert value is None or 0 <= value < 2**32
    assert ttl.has_soa_in_authority(data) in (True, False)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=len(_answer((300, 60), auth_soa=20))))
def test_truncated_answer_walks_prefix(cut: int) -> None:
    full = _answer((300, 60), auth_soa=20)
    offs = ttl.ttl_offsets(full[:cut])
    assert offs == ttl.ttl_offsets(full)[:len(offs)]


def _reference_walk(resp: bytes) -> tuple[list[int], int, bool]:
    """The field-by-field walk the fast one replaced (dnsdist's DNSPacketMangler order)."""
    import struct
    offsets: list[int] = []
    min_ttl, soa, end = ttl.NO_TTL, False, len(resp)
    if end < 12:
        return offsets, min_ttl, soa
    qd, an, ns, ar = struct.unpack_from("!4H", resp, 4)
    pos = 12
    for _ in range(qd):
        pos = skip_name(resp, pos)
        if pos < 0 or pos + 4 > end:
            return offsets, min_ttl, soa
        pos += 4
    for n in range(an + ns + ar):
        pos = skip_name(resp, pos)
        if pos < 0 or pos + 4 > end:
            break
        rtype, rclass = struct.unpack_from("!HH", resp, pos)
        pos += 4
        if rtype == 41:
            break
        if rtype == 6 and rclass == 1 and an <= n < an + ns:
            soa = True
        if pos + 4 > end:
            break
        offsets.append(pos)
        min_ttl = min(min_ttl, struct.unpack_from("!I", resp, pos)[0])
        pos += 4
        if pos + 2 > end:
            break
        pos += 2 + struct.unpack_from("!H", resp, pos)[0]
        if pos > end:
            break
    return offsets, min_ttl, soa


def _soa_in_answer() -> bytes:
    q = dns.message.make_query("example.com.", "SOA")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("example.com.", 50, "IN", "SOA", "ns. host. 1 2 3 4 5"))
    return r.to_wire()


_SAMPLES = [_answer((300, 60), auth_soa=20), _answer((), auth_soa=7, edns=False), _soa_in_answer(),
            _answer((5, 6, 7), edns=True), _answer((9,), edns=False)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SAMPLES), st.integers(min_value=0, max_value=200),
       st.binary(max_size=12), st.integers(min_value=0, max_value=200))
def test_fast_walk_matches_field_by_field(base: bytes, at: int, junk: bytes, cut: int) -> None:
    """Spliced, corrupted and cut answers: same offsets, minimum and SOA flag as the reference."""
    at = min(at, len(base))
    data = (base[:at] + junk + base[at + len(junk):])[:max(cut, 12)]
    assert ttl._walk(data) == _reference_walk(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_fast_walk_matches_on_garbage(data: bytes) -> None:
    assert ttl._walk(data) == _reference_walk(data)
