"""Answers made from the query (RCodeAction, ERCodeAction, TCAction, Lua verdicts, no server),
pydist against real dnsdist 1.7.3, byte for byte (the ID aside): a query whose only extra
record is its OPT gets a fresh OPT; a query carrying other records (answer, authority,
additional) is echoed whole, its OPT and options included, with the new flags and rcode."""
from __future__ import annotations

import dns.edns
import dns.message
import dns.rrset

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import DnsdistProcess
from tests.helpers.sides import assert_same, views_of_both
from tests.integration.test_ecs_proxy_diff import exchange

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
addAction("rc.test.", RCodeAction(DNSRCode.REFUSED))
addAction("rcaa.test.", RCodeAction(DNSRCode.NXDOMAIN, {aa=true, ra=false}))
addAction("erc.test.", ERCodeAction(DNSRCode.BADVERS))
addAction("tc.test.", TCAction())
setServFailWhenNoServer(true)
getPool("empty")
addAction("nosrv.test.", PoolAction("empty"))
addAction("lua.test.", LuaAction(function(dq) return DNSAction.Nxdomain end))
addAction("hm.test.", LuaAction(function(dq)
  dq.dh:setQR(true) dq.rcode = 4 return DNSAction.HeaderModify end))
"""
NAMES = ("rc.test.", "rcaa.test.", "erc.test.", "tc.test.", "lua.test.", "hm.test.", "nosrv.test.")
SHAPES = ("bare", "edns", "records", "records+edns", "additional+edns")


def _query(name: str, shape: str) -> bytes:
    edns = shape.endswith("edns")
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False,
                               options=[dns.edns.GenericOption(10, b"\x01" * 8)] if edns else [])
    if shape.startswith("records"):
        q.answer.append(dns.rrset.from_text(name, 30, "IN", "A", "192.0.2.9"))
        q.authority.append(dns.rrset.from_text("test.", 30, "IN", "NS", "ns.test."))
    if shape.startswith(("records", "additional")):
        q.additional.append(dns.rrset.from_text("ns.test.", 30, "IN", "A", "192.0.2.8"))
    return q.to_wire()


def test_query_turned_answer_as_dnsdist(start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    backend = responder_factory()

    def answers(proc: DnsdistProcess) -> list:
        return [(name, shape, tcp, exchange(proc.addr(), _query(name, shape), tcp=tcp)[0][2:].hex())
                for name in NAMES for shape in SHAPES for tcp in (False, True)]
    assert_same(views_of_both(start_proc, CONF, lambda: {"backend": backend.address}, answers))
