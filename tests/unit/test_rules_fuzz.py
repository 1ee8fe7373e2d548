"""Random and truncated queries through a packet path full of rules, dynamic blocks and
self-answered response rules: no exception escapes, and every query is answered or dropped."""
from __future__ import annotations

from typing import Any

import dnslib
from hypothesis import example, given, settings
from hypothesis import strategies as st

from luaapi.runtime import LuaConfig
from pydist.packet_path import PacketPath
from pydist.registry import FrontendDecl, Registry
from pydist.rings import Rings
from pydist.transport import Transport
from pydist.verdict import ANSWER

CONF = r"""
addDynBlockSMT({"blocked.test."}, "smt", 60, DNSAction.Refused)
addAction(RegexRule("^a"), SpoofAction({"192.0.2.1", "2001:db8::1"}))
addAction(QNameLabelsCountRule(1, 3), RCodeAction(DNSRCode.NXDOMAIN))
addAction(EDNSOptionRule(8), TCAction())
addAction(RecordsTypeCountRule(DNSSection.Additional, DNSQType.OPT, 2, 9), DropAction())
addAction(DNSSECRule(), SetEDNSOptionAction(65001, "x"))
addAction(AllRule(), NegativeAndSOAAction(true, "test.", 60, "ns.test.", "h.test.", 1, 2, 3, 4, 5))
addSelfAnsweredResponseAction(RCodeRule(DNSRCode.NXDOMAIN), LuaResponseAction(function(dr)
  dr:editTTLs(function(s, c, t, ttl) return ttl + 1 end)
  return DNSResponseAction.None
end))
"""


class FakeSock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(bytes(data))


class FakeLoop:
    def call_later(self, delay: float, fn: Any, *args: Any) -> None:
        fn(*args)


def make_path() -> tuple[PacketPath, Registry]:
    reg = Registry(log=lambda line: None)
    LuaConfig(reg).run_code(CONF, "chunk")
    reg.rings = Rings(100)
    return PacketPath(reg, FakeLoop()), reg


PATH, REG = make_path()
FE = FrontendDecl("127.0.0.1", 53).udp_state


def query_bytes(name: str, qtype: str, edns: bool) -> bytes:
    q = dnslib.DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(dnslib.EDNS0(flags="do", udp_len=1232))
    return q.pack()


def answers_of(data: bytes, tcp: bool) -> list[bytes]:
    """What the query step answers at once (nothing when it drops or forwards)."""
    transport = Transport.DO53_TCP if tcp else Transport.DO53_UDP
    v = PATH.query_step(data, ("192.0.2.55", 4242), None, transport, FE, 1000.0)
    return [v.data] if v.kind == ANSWER else []


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=12, max_size=300))
@example(query_bytes("a.b.c.d.e.test.", "A", True)[:-3])
@example(query_bytes("x.blocked.test.", "A", False))
@example(b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01\xc0\x0c\x00\x01\x00\x01")
def test_random_queries_never_raise(data: bytes) -> None:
    data = data[:2] + bytes([data[2] & 0x7F]) + data[3:]        # QR=0, as the frontend checks
    for resp in answers_of(data, False):
        assert len(resp) >= 12 and resp[2] & 0x80 and resp[:2] == data[:2]


@given(st.sampled_from(["a.test.", "b.c.test.", "x.y.z.w.v.test.", "x.blocked.test."]),
       st.sampled_from(["A", "AAAA", "TXT"]), st.booleans(), st.booleans())
def test_wellformed_queries_get_parseable_answers(name: str, qtype: str, edns: bool,
                                                  tcp: bool) -> None:
    data = query_bytes(name, qtype, edns)
    answers = answers_of(data, tcp)
    assert len(answers) == 1 and answers[0] is not None
    r = dnslib.DNSRecord.parse(answers[0])
    assert r.header.qr and r.header.id == dnslib.DNSRecord.parse(data).header.id
