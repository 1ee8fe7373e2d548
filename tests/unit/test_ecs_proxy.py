"""ECS option building/stripping and proxy protocol v2 headers, byte for byte as dnsdist 1.7.3
sent them to a recording responder (the hex below is what real dnsdist put on the wire)."""
from __future__ import annotations

import dnslib

from pydist.dns.ecs import ECS_ADDED, EDNS_ADDED, NOTHING_ADDED, apply_ecs, ecs_option, strip_ecs
from pydist.dns.reader import locate_opt
from pydist.dns.proxyprotocol import LOCAL_HEADER, parse_header, proxy_header

PLAIN = bytes.fromhex("00000120000100000000000001610765" "78616d706c650000010001")
# dnsdist 1.7.3 forwarding PLAIN from 127.0.0.1 to a useClientSubnet backend
PLAIN_ECS = bytes.fromhex("00000120000100000000000101610765" "78616d706c650000010001"
                          "000029020000000000000b00080007000118007f0000")
COOKIE = bytes.fromhex("000a0008ea648dcb7c35262b")


def with_opt(options: bytes, payload: int = 1232) -> bytes:
    rr = b"\x00\x00\x29" + payload.to_bytes(2, "big") + b"\x00" * 4
    return PLAIN[:10] + b"\x00\x01" + PLAIN[12:] + rr + len(options).to_bytes(2, "big") + options


def test_ecs_option_truncates_to_the_prefix() -> None:
    assert ecs_option("127.0.0.1", 24) == bytes.fromhex("00080007000118007f0000")
    assert ecs_option("10.1.2.3", 20) == bytes.fromhex("0008000700011400" "0a0100")
    assert ecs_option("10.1.2.3", 0) == bytes.fromhex("000800040001" "0000")
    assert ecs_option("2001:db8:1:2:3::1", 56) == bytes.fromhex("0008000b00023800"
                                                                  "20010db8000100")
    assert ecs_option("::ffff:127.0.0.5", 32) == bytes.fromhex("00080008000120007f000005")


def test_query_without_opt_gets_dnsdists_opt() -> None:
    out, added = apply_ecs(PLAIN, ecs_option("127.0.0.1", 24), False)
    assert out == PLAIN_ECS and added == EDNS_ADDED


def test_option_appended_to_an_existing_opt() -> None:
    out, added = apply_ecs(with_opt(COOKIE), ecs_option("127.0.0.1", 24), False)
    assert out == with_opt(COOKIE + bytes.fromhex("00080007000118007f0000"))
    assert added == ECS_ADDED


def test_client_ecs_kept_unless_override() -> None:
    client = bytes.fromhex("00080007000118000a0102")
    q = with_opt(client + COOKIE)
    assert apply_ecs(q, ecs_option("127.0.0.1", 24), False) == (q, NOTHING_ADDED)
    out, added = apply_ecs(q, ecs_option("127.0.0.1", 24), True)
    assert out == with_opt(ecs_option("127.0.0.1", 24) + COOKIE) and added == NOTHING_ADDED


def test_garbled_query_is_refused() -> None:
    assert apply_ecs(PLAIN[:-3], ecs_option("127.0.0.1", 24), False) == (None, NOTHING_ADDED)
    bad = with_opt(b"\x00\x08\x00\x20\x00")                                 # option overruns
    assert apply_ecs(bad, ecs_option("127.0.0.1", 24), False) == (None, NOTHING_ADDED)


def answer_for(query: bytes) -> bytes:
    """A backend answer with one A record that echoes the query's OPT RR (with scope 24)."""
    q = dnslib.DNSRecord.parse(query)
    r = q.reply()
    r.add_answer(dnslib.RR(q.q.qname, 1, ttl=60, rdata=dnslib.A("192.0.2.1")))
    r.additional = []
    body = bytearray(r.pack())
    start, end = locate_opt(query)
    body[10:12] = b"\x00\x01"
    return bytes(body) + query[start:end]


def test_strip_removes_the_added_opt() -> None:
    resp = answer_for(PLAIN_ECS)
    stripped = strip_ecs(resp, EDNS_ADDED)
    assert stripped[10:12] == b"\x00\x00" and locate_opt(stripped) == (-1, -1)
    assert stripped == resp[:10] + b"\x00\x00" + resp[12:locate_opt(resp)[0]]
    assert strip_ecs(resp, NOTHING_ADDED) is resp


def test_strip_removes_only_the_added_option() -> None:
    q, _ = apply_ecs(with_opt(COOKIE), ecs_option("127.0.0.1", 24), False)
    resp = answer_for(q)
    stripped = strip_ecs(resp, ECS_ADDED)
    s, e = locate_opt(stripped)
    assert stripped[s:e] == b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x0c" + COOKIE
    assert strip_ecs(stripped, ECS_ADDED) == stripped          # nothing more to take
    assert strip_ecs(b"\x00" * 11, EDNS_ADDED) == b"\x00" * 11     # garbage is left alone


def test_proxy_header_udp_and_tlvs() -> None:
    # dnsdist 1.7.3: client 127.0.0.1:58065 -> frontend 127.0.0.1:25353 over UDP
    assert proxy_header(("127.0.0.1", 0xE2D1), ("127.0.0.1", 25353), False) == bytes.fromhex(
        "0d0a0d0a000d0a515549540a2112000c7f0000017f000001e2d16309")
    hdr = proxy_header(("127.0.0.1", 0x9C13), ("127.0.0.1", 25353), False, [(42, b"foo")])
    assert hdr == bytes.fromhex("0d0a0d0a000d0a515549540a211200127f0000017f0000019c136309"
                                "2a0003666f6f")
    tcp = proxy_header(("::1", 5300, 0, 0), ("::1", 53), True)
    assert tcp[12:16] == b"\x21\x21\x00\x24" and len(tcp) == 16 + 36
    fields, n = parse_header(hdr + PLAIN)
    assert n == len(hdr) and fields["source"] == ("127.0.0.1", 0x9C13)
    assert fields["destination"] == ("127.0.0.1", 25353) and fields["values"] == [(42, b"foo")]
    assert parse_header(tcp)[0]["source"] == ("::1", 5300)


def test_local_header_for_health_checks_and_unparsable_addresses() -> None:
    assert LOCAL_HEADER == bytes.fromhex("0d0a0d0a000d0a515549540a20000000")
    assert proxy_header(("not an ip", 1), ("127.0.0.1", 53), False) == LOCAL_HEADER
    assert parse_header(LOCAL_HEADER)[0]["command"] == 0
    assert parse_header(b"\r\n\r\n") is None
