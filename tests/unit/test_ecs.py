"""ECS insertion and removal on wire bytes (pydist.dns.ecs): options, OPT added or reused, client
ECS kept or overridden, and the answer cleaned of what was added."""
from __future__ import annotations

import dnslib

from pydist.dns.ecs import ECS_ADDED, EDNS_ADDED, NOTHING_ADDED, apply_ecs, ecs_option, strip_ecs


def _query(edns: bool, ecs: bytes | None = None) -> bytes:
    q = dnslib.DNSRecord.question("www.example.", "A")
    if edns:
        opts = [dnslib.EDNSOption(8, ecs)] if ecs else []
        q.add_ar(dnslib.EDNS0(udp_len=1232, opts=opts))
    return bytes(q.pack())


def test_option_bytes() -> None:
    assert ecs_option("192.0.2.77", 24).hex() == "0008000700011800c00002"
    assert ecs_option("::ffff:192.0.2.77", 24).hex() == "0008000700011800c00002"
    assert ecs_option("2001:db8:1:2::1", 56).hex() == "0008000b0002380020010db8000100"
    assert ecs_option("192.0.2.77", 20).hex() == "00080007000114" "00c00000"   # /20: masked


def test_add_to_plain_query_then_strip_the_opt() -> None:
    out, added = apply_ecs(_query(False), ecs_option("192.0.2.1", 24), False)
    rec = dnslib.DNSRecord.parse(out)
    assert added == EDNS_ADDED and rec.ar[0].rclass == 512
    assert rec.ar[0].rdata[0].code == 8
    resp = rec.reply()
    ecs = dnslib.EDNSOption(8, b"\x00\x01\x18\x18\xc0\x00\x02")
    resp.add_ar(dnslib.EDNS0(udp_len=512, opts=[ecs]))
    cleaned = dnslib.DNSRecord.parse(strip_ecs(bytes(resp.pack()), added))
    assert cleaned.ar == [] and cleaned.header.ar == 0


def test_client_ecs_kept_unless_override() -> None:
    data = _query(True, b"\x00\x01\x18\x00\xc6\x33\x64")
    opt = ecs_option("192.0.2.1", 24)
    assert apply_ecs(data, opt, False) == (data, NOTHING_ADDED)
    out, added = apply_ecs(data, opt, True)
    options = dnslib.DNSRecord.parse(out).ar[0].rdata
    assert added == NOTHING_ADDED
    assert [o.data.hex() for o in options] == ["00011800c00002"]


def test_strip_only_the_ecs_option() -> None:
    out, added = apply_ecs(_query(True), ecs_option("192.0.2.1", 24), False)
    assert added == ECS_ADDED
    resp = dnslib.DNSRecord.parse(out).reply()
    resp.add_answer(dnslib.RR("www.example.", rdata=dnslib.A("192.0.2.9")))
    ecs = dnslib.EDNSOption(8, b"\x00\x01\x18\x18\xc0\x00\x02")
    resp.add_ar(dnslib.EDNS0(udp_len=1232, opts=[dnslib.EDNSOption(10, b"c" * 8), ecs]))
    cleaned = dnslib.DNSRecord.parse(strip_ecs(bytes(resp.pack()), added))
    assert [o.code for o in cleaned.ar[0].rdata] == [10]
    assert cleaned.rr[0].rdata == dnslib.A("192.0.2.9")
