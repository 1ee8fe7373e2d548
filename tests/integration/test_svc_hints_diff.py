"""SpoofSVCAction's additional hint records, pydist against real dnsdist 1.7.3 byte for byte
(the ID aside): all A hints then all AAAA hints, duplicates merged (names without case), in
the order of dnsdist's set of (DNSName, ComboAddress)."""
from __future__ import annotations

import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import DnsdistProcess
from tests.helpers.sides import assert_same, views_of_both
from tests.integration.test_ecs_proxy_diff import exchange

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
local s1 = newSVCRecordParameters(1, "b.test.", {ipv4hint={"192.0.2.9", "192.0.2.1", "192.0.2.9"},
  ipv6hint={"2001:db8::9", "2001:db8::1"}})
local s2 = newSVCRecordParameters(2, "a.test.", {ipv4hint={"192.0.2.5"}})
local s3 = newSVCRecordParameters(3, "B.test.", {ipv4hint={"192.0.2.3"}})
local s4 = newSVCRecordParameters(4, "aa.x.test.", {ipv4hint={"10.0.0.1"}})
local s5 = newSVCRecordParameters(5, "z.test.", {ipv4hint={"10.0.0.2"}})
local s6 = newSVCRecordParameters(6, "test.", {ipv4hint={"10.0.0.3"}})
local s7 = newSVCRecordParameters(7, ".", {ipv4hint={"10.0.0.4"}, ipv6hint={"::4"}})
addAction("svc.test.", SpoofSVCAction({s1, s2, s3, s4, s5, s6, s7}, {ttl=30}))
local c1 = newSVCRecordParameters(1, "C.test.", {ipv4hint={"192.0.2.1", "10.0.0.9", "192.0.3.0"},
  ipv6hint={"2001:db8::9", "::2"}})
local c2 = newSVCRecordParameters(2, "c.TEST.", {ipv4hint={"10.0.0.8"}})
addAction("addr.test.", SpoofSVCAction({c1, c2}, {ttl=30}))
"""


def test_svc_hint_order_as_dnsdist(start_proc: Starter,
                                   responder_factory: ResponderFactory) -> None:
    backend = responder_factory()

    def answers(proc: DnsdistProcess) -> list:
        return [exchange(proc.addr(), dns.message.make_query(
            name, qtype, use_edns=edns).to_wire(), tcp=tcp)[0][2:].hex()
            for name in ("svc.test.", "addr.test.") for qtype in ("HTTPS", "SVCB")
            for edns in (False, 0) for tcp in (False, True)]
    assert_same(views_of_both(start_proc, CONF, lambda: {"backend": backend.address}, answers))
