"""Zone transfer tracking (dnsdist's isXFRFinished), the answer checks shared by UDP and TCP,
dnsdist's name decompression rules, and a failing client side that leaves a shared backend
connection serving."""
from __future__ import annotations

import asyncio

import dnslib

from pydist.backend.server import DownstreamState
from pydist.backend.tcp import BackendConnection, BackendTCPPool
from pydist.backend.udp import answer_matches
from pydist.backend.xfr import XFRProgress, is_xfr
from pydist.dns.ecs import checked_name_end, parses_as_dnsdist
from pydist.stats import Stats


def _message(*serials: int, rcode: int = 0) -> bytes:
    r = dnslib.DNSRecord.question("zone.test.", "AXFR").reply()
    r.header.rcode = rcode
    for s in serials:
        r.add_answer(dnslib.RR("zone.test.", dnslib.QTYPE.SOA, rdata=dnslib.SOA(
            "ns.zone.test.", "h.zone.test.", (s, 2, 3, 4, 5))))
    r.add_answer(dnslib.RR("a.zone.test.", dnslib.QTYPE.A, rdata=dnslib.A("192.0.2.1")))
    return r.pack()


def test_axfr_ends_at_the_second_soa() -> None:
    x = XFRProgress()
    assert not x.finished(_message(7)) and not x.finished(_message())
    assert x.finished(_message(7))


def test_axfr_in_one_message() -> None:
    assert XFRProgress().finished(_message(7, 7))


def test_ixfr_ends_at_the_third_primary_serial() -> None:
    x = XFRProgress()
    assert not x.finished(_message(7, 5))        # new SOA, then the old one starts a diff
    assert not x.finished(_message(7))            # primary serial again: end of the diff
    assert x.finished(_message(7))                # a third time: the end


def test_error_rcode_ends_the_transfer_and_garbage_ends_nothing() -> None:
    assert XFRProgress().finished(_message(rcode=5))
    assert not XFRProgress().finished(_message(7)[:-3])


def test_is_xfr() -> None:
    assert is_xfr(dnslib.DNSRecord.question("z.", "AXFR").pack())
    assert is_xfr(dnslib.DNSRecord.question("z.", "IXFR").pack())
    assert not is_xfr(dnslib.DNSRecord.question("z.", "SOA").pack())
    assert not is_xfr(b"\x00" * 5)


def test_answer_matches_as_response_content_matches() -> None:
    stats = Stats()
    q = dnslib.DNSRecord.question("Www.Example.", "A")
    question = q.pack()[12:]
    answer = q.reply().pack()
    assert answer_matches(answer, question, False, stats)
    assert answer_matches(answer.replace(b"Www", b"wWW"), question, False, stats)
    assert not answer_matches(q.pack(), question, False, stats)          # not a response
    header_only = answer[:4] + b"\x00" * 8
    assert not answer_matches(header_only, question, False, stats)
    assert answer_matches(header_only, question, True, stats)            # setAllowEmptyResponse
    assert answer_matches(answer[:3] + b"\x82" + b"\x00" * 8, question, False, stats)  # SERVFAIL
    other = dnslib.DNSRecord.question("other.example.", "A").reply().pack()
    assert not answer_matches(other, question, False, stats)
    assert stats.noncompliant_responses == 2


def test_names_decompressed_as_dnsdist() -> None:
    pkt = b"\x00" * 12 + b"\x01a\x00" + b"\xc0\x0c" + b"\x01b\xc0\x0c" + b"\xc0\x15"
    assert checked_name_end(pkt, 12) == 15
    assert checked_name_end(pkt, 15) == 17               # backwards: fine
    assert checked_name_end(pkt, 17) == 21
    assert checked_name_end(pkt, 21) == -1               # points at itself (a loop)
    assert checked_name_end(b"\x00" * 12 + b"\xc0\x10\x00\x00\x01a\x00", 12) == -1  # forward
    assert checked_name_end(b"\x00" * 12 + b"\x40a\x00", 12) == -1    # reserved label bits
    assert checked_name_end(b"\x00" * 12 + b"\x3f" + b"a" * 63, 12) == -1   # runs off


def test_forward_pointer_in_a_record_fails_the_walk() -> None:
    r = dnslib.DNSRecord.question("fwd.test.", "A").reply()
    r.add_answer(dnslib.RR("fwd.test.", dnslib.QTYPE.A, rdata=dnslib.A("192.0.2.9")))
    wire = bytearray(r.pack())
    assert parses_as_dnsdist(bytes(wire))
    owner = wire.index(b"\xc0\x0c")
    wire[owner:owner + 2] = (0xC000 | (owner + 12)).to_bytes(2, "big")
    assert not parses_as_dnsdist(bytes(wire))


def test_a_failing_client_side_leaves_the_backend_connection_serving() -> None:
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, _ctx: None)
    try:
        pool = BackendTCPPool(loop, DownstreamState("127.0.0.1", 53, {}))
        conn = BackendConnection(pool)

        class Transport:
            def write(self, data: bytes) -> None:
                pass

            def get_write_buffer_size(self) -> int:
                return 0

            def close(self) -> None:
                raise AssertionError("the shared connection must stay open")
        conn.connection_made(Transport())
        q1 = dnslib.DNSRecord.question("a.test.", "A")
        q1.header.id = 1
        q2 = dnslib.DNSRecord.question("b.test.", "A")
        q2.header.id = 2

        def broken(resp: bytes | None) -> None:
            raise RecursionError("a client connection gone wrong")
        got: list[bytes | None] = []
        conn.send(bytes(q1.pack()), broken, 0)
        conn.data_received(_framed(bytes(q1.reply().pack())))
        conn.send(bytes(q2.pack()), got.append, 0)
        conn.data_received(_framed(bytes(q2.reply().pack())))
        assert got and got[0][:2] == b"\x00\x02" and not conn.closed
    finally:
        loop.close()


def _framed(resp: bytes) -> bytes:
    return len(resp).to_bytes(2, "big") + resp
