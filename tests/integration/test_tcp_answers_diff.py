"""Backend answers over TCP, on pydist and real dnsdist 1.7.3: zone transfers relayed message by
message until the final SOA (plain TCP and DoT); answers that are not answers to the question
(header-only NOERROR/NXDOMAIN, another name) dropped and the client connection closed; a
malformed answer dropped when ECS was added to the query."""
from __future__ import annotations

import socket

import dns.message
import dnslib
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.dot import CertSet, certs  # noqa: F401 -- the certs fixture
from tests.helpers.pipeline import connect, framed, read_answers
from tests.helpers.pydist_proc import run_cli
from tests.helpers.responder import default_handler

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addTLSLocal("127.0.0.1:{portdot}", "{cert}", "{key}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
newServer{address="{backend}"{serveropts}}
""".replace("KEY", KEY)


def _soa(serial: int) -> dnslib.RR:
    return dnslib.RR("zone.test.", dnslib.QTYPE.SOA, ttl=60,
                     rdata=dnslib.SOA("ns.zone.test.", "h.zone.test.", (serial, 2, 3, 4, 60)))


def _a(name: str, ip: str) -> dnslib.RR:
    return dnslib.RR(name, dnslib.QTYPE.A, ttl=60, rdata=dnslib.A(ip))


def forward_pointer(q: dnslib.DNSRecord, with_opt: bool) -> bytes:
    """An A answer whose owner name is a compression pointer pointing forward (into its own
    rdata), with an OPT record after it or not."""
    r = q.reply()
    r.add_answer(_a(str(q.q.qname), "192.0.2.9"))
    if with_opt:
        r.add_ar(dnslib.EDNS0(udp_len=1232))
    wire = bytearray(r.pack())
    owner = wire.index(b"\xc0\x0c")
    assert wire[owner:owner + 2] == b"\xc0\x0c"
    wire[owner:owner + 2] = (0xC000 | (owner + 12)).to_bytes(2, "big")
    return bytes(wire)


def backend(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord | bytes | list | None:
    """AXFR of zone.test. in three messages, IXFR in three, and the broken answers."""
    name = str(q.q.qname)
    if q.q.qtype == dnslib.QTYPE.AXFR:
        first, middle, last = q.reply(), q.reply(), q.reply()
        first.add_answer(_soa(7))
        first.add_answer(_a("a.zone.test.", "192.0.2.1"))
        middle.add_answer(_a("b.zone.test.", "192.0.2.2"))
        last.add_answer(_a("c.zone.test.", "192.0.2.3"))
        last.add_answer(_soa(7))
        return [first, middle, last]
    if q.q.qtype == dnslib.QTYPE.IXFR:      # serial 5 -> 7: new SOA, old SOA, ..., new SOA
        first, middle, last = q.reply(), q.reply(), q.reply()
        first.add_answer(_soa(7))
        first.add_answer(_soa(5))
        middle.add_answer(_a("gone.zone.test.", "192.0.2.5"))
        middle.add_answer(_soa(7))
        last.add_answer(_a("new.zone.test.", "192.0.2.7"))
        last.add_answer(_soa(7))
        return [first, middle, last]
    if name.startswith("empty."):            # header only, NOERROR
        return q.header.id.to_bytes(2, "big") + b"\x81\x80" + b"\x00" * 8
    if name.startswith("emptynx."):          # header only, NXDOMAIN
        return q.header.id.to_bytes(2, "big") + b"\x81\x83" + b"\x00" * 8
    if name.startswith("other."):            # an answer for another name
        r = q.reply()
        r.q.qname = dnslib.DNSLabel("else.bad.test.")
        return r
    if name.startswith("fwdopt."):
        return forward_pointer(q, True)
    return default_handler()(q, transport)


def _start(start_proc: Starter, impl: str, certs: CertSet, responder_factory: ResponderFactory,
           serveropts: str = ""):
    b = responder_factory(backend)
    return start_proc(impl, CONF, {"backend": b.address, "cert": certs.cert, "key": certs.key,
                                   "serveropts": serveropts})


def _counter(proc, name: str) -> int:
    out = run_cli(proc.impl, ["-C", str(proc.conf), "-e",
                              f'getStatisticsCounters()["{name}"]']).stdout
    return int(float(out.strip()))


@pytest.mark.parametrize("qtype", ["AXFR", "IXFR"])
@pytest.mark.parametrize("over", ["tcp", "dot"])
@pytest.mark.parametrize("impl", BOTH)
def test_zone_transfer_relayed_until_the_final_soa(impl: str, over: str, qtype: str,
                                                   start_proc: Starter,
                                                   responder_factory: ResponderFactory,
                                                   certs: CertSet) -> None:
    proc = _start(start_proc, impl, certs, responder_factory)
    where = proc.addr("portdot" if over == "dot" else "port")
    with connect(where, certs.ca_path if over == "dot" else None) as s:
        s.sendall(framed("zone.test.", 4242, qtype))
        messages, closed = read_answers(s, 4, timeout=5)
    assert [m.id for m in messages] == [4242] * 3
    names = [str(rrset.name) for m in messages for rrset in m.answer]
    assert names[0] == "zone.test." and names[-1] == "zone.test."
    assert "c.zone.test." in names or "new.zone.test." in names
    # as observed on dnsdist 1.7.3: the transfer ends the client connection
    assert closed
    assert _counter(proc, "responses") == 0        # transfers are not counted as responses


@pytest.mark.parametrize("name", ["empty.bad.test.", "emptynx.bad.test.", "other.bad.test."])
@pytest.mark.parametrize("impl", BOTH)
def test_answer_to_another_question_closes_the_tcp_connection(
        impl: str, name: str, start_proc: Starter, responder_factory: ResponderFactory,
        certs: CertSet) -> None:
    proc = _start(start_proc, impl, certs, responder_factory)
    with connect(proc.addr()) as s:
        s.sendall(framed(name, 11) + framed("fine.test.", 12))
        answers, closed = read_answers(s, 2, timeout=4)
    assert answers == [] and closed
    expected = 0 if name.startswith("other.") else 1
    assert _counter(proc, "noncompliant-responses") == expected
    assert _counter(proc, "responses") == 0


def _udp(where: tuple[str, int], name: str) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(1.5)
        u.sendto(dns.message.make_query(name, "A").to_wire(), where)
        try:
            return u.recv(4096)
        except socket.timeout:
            return None


@pytest.mark.parametrize("ecs", [False, True])
@pytest.mark.parametrize("impl", BOTH)
def test_malformed_answer_dropped_when_ecs_was_added(impl: str, ecs: bool, start_proc: Starter,
                                                     responder_factory: ResponderFactory,
                                                     certs: CertSet) -> None:
    proc = _start(start_proc, impl, certs, responder_factory,
                  ", useClientSubnet=true" if ecs else "")
    with connect(proc.addr()) as s:
        s.sendall(framed("fwdopt.ecs.test.", 21) + framed("fine.test.", 22))
        answers, closed = read_answers(s, 2, timeout=4)
    udp = _udp(proc.addr(), "fwdopt.ecs.test.")
    if ecs:
        assert answers == [] and closed and udp is None
    else:
        assert len(answers) == 2 and isinstance(answers[0], bytes) and udp is not None
