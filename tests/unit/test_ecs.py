"""ECS insertion and removal on wire bytes (pydist.ecs): options, OPT added or reused, client
ECS kept or overridden, and the answer cleaned of what was added."""
from __future__ import annotations

import dnslib

from pydist.ecs import add_ecs, ecs_option, strip_added


def _query(edns: bool, ecs: bytes | None = None) -> tuple[bytes, int]:
    q = dnslib.DNSRecord.question("www.example.", "A")
    if edns:
        opts = [dnslib.EDNSOption(8, ecs)] if ecs else []
        q.add_ar(dnslib.EDNS0(udp_len=1232, opts=opts))
    data = bytes(q.pack())
    return data, 12 + len(b"\x03www\x07example\x00")


def test_option_bytes() -> None:
    assert ecs_option("192.0.2.77", 24, 56).hex() == "0008000700011800c00002"
    assert ecs_option("::ffff:192.0.2.77", 24, 56).hex() == "0008000700011800c00002"
    assert ecs_option("2001:db8:1:2::1", 24, 56).hex() == "0008000b0002380020010db8000100"
    assert ecs_option("192.0.2.77", 20, 56).hex() == "00080007000114" "00c00000"   # /20: masked


def test_add_to_plain_query_then_strip_the_opt() -> None:
    data, end = _query(False)
    out, edns_added, ecs_added = add_ecs(data, end, ecs_option("192.0.2.1", 24, 56), False)
    rec = dnslib.DNSRecord.parse(out)
    assert edns_added and ecs_added and rec.ar[0].rclass == 512
    assert rec.ar[0].rdata[0].code == 8
    resp = rec.reply()
    ecs = dnslib.EDNSOption(8, b"\x00\x01\x18\x18\xc0\x00\x02")
    resp.add_ar(dnslib.EDNS0(udp_len=512, opts=[ecs]))
    cleaned = dnslib.DNSRecord.parse(strip_added(bytes(resp.pack()), True, True))
    assert cleaned.ar == [] and cleaned.header.ar == 0


def test_client_ecs_kept_unless_override() -> None:
    data, end = _query(True, b"\x00\x01\x18\x00\xc6\x33\x64")
    opt = ecs_option("192.0.2.1", 24, 56)
    assert add_ecs(data, end, opt, False) == (data, False, False)
    out, edns_added, ecs_added = add_ecs(data, end, opt, True)
    options = dnslib.DNSRecord.parse(out).ar[0].rdata
    assert not edns_added and not ecs_added
    assert [o.data.hex() for o in options] == ["00011800c00002"]


def test_strip_only_the_ecs_option() -> None:
    data, end = _query(True)
    out, edns_added, ecs_added = add_ecs(data, end, ecs_option("192.0.2.1", 24, 56), False)
    assert not edns_added and ecs_added
    resp = dnslib.DNSRecord.parse(out).reply()
    resp.add_answer(dnslib.RR("www.example.", rdata=dnslib.A("192.0.2.9")))
    ecs = dnslib.EDNSOption(8, b"\x00\x01\x18\x18\xc0\x00\x02")
    resp.add_ar(dnslib.EDNS0(udp_len=1232, opts=[dnslib.EDNSOption(10, b"c" * 8), ecs]))
    cleaned = dnslib.DNSRecord.parse(strip_added(bytes(resp.pack()), False, True))
    assert [o.code for o in cleaned.ar[0].rdata] == [10]
    assert cleaned.rr[0].rdata == dnslib.A("192.0.2.9")
