"""Same config, same queries, pydist and real dnsdist: UDP timeouts and no-server answers."""
from __future__ import annotations

import socket
import time

import dns.flags
import dns.message
import dns.rcode
import pytest

from tests.conftest import BOTH, Starter, available_impls
from tests.helpers.pydist_proc import DnsdistProcess, query, send_message
from tests.helpers.responder import Responder, default_handler

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
"""
NO_SERVER = CONF + "getServer(0):setDown()\n"


def _silent_for_some(q: object, transport: str) -> object:
    """Answers everything (health checks included) except names below silent.test."""
    if "silent.test" in str(q.q.qname).lower():  # type: ignore[attr-defined]
        return None
    return _ANSWER(q, transport)


_ANSWER = default_handler()


def test_udp_timeout_gets_no_answer(start_proc: Starter, responder_factory: object) -> None:
    """A query the backend never answers gets nothing, even after dnsdist's ~4 s timeout sweep;
    then the process still answers. Both implementations run side by side (one wait)."""
    impls = available_impls()
    backend: Responder = responder_factory(handler=_silent_for_some)  # type: ignore[operator]
    procs = [start_proc(i, CONF, {"backend": backend.address}) for i in impls]
    socks = []
    for p in procs:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(p.addr())
        s.send(dns.message.make_query("q.silent.test.", "A").to_wire())
        socks.append(s)
    deadline = time.monotonic() + 4.5  # dnsdist sweeps a slot after 3-4 s (setUDPTimeout 2)
    try:
        for s in socks:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            with pytest.raises(socket.timeout):
                s.recv(4096)
    finally:
        for s in socks:
            s.close()
    assert backend.count("q.silent.test.") == len(procs)
    for p in procs:
        assert query(p.addr(), "after-timeout.example.") is not None, p.impl
        assert p.alive()


def _no_server_answers(proc: DnsdistProcess) -> dict[str, bytes | None]:
    """The raw answers to a fixed set of queries, keyed by a label."""
    out: dict[str, bytes | None] = {}
    for label, kw in (("plain", {}), ("edns", {"use_edns": 0, "payload": 4000}),
                      ("do+ad+cd", {"use_edns": 0, "want_dnssec": True,
                                    "flags": dns.flags.RD | dns.flags.AD | dns.flags.CD})):
        for tcp in (False, True):
            q = dns.message.make_query("noserver.example.", "A", **kw)  # type: ignore[arg-type]
            q.id = 0x7777
            r = send_message(proc.addr(), q, tcp=tcp, timeout=1.0)
            out[f"{label}/{'tcp' if tcp else 'udp'}"] = r.to_wire() if r is not None else None
    return out


@pytest.mark.parametrize("impl", BOTH)
def test_no_server_drops(impl: str, start_proc: Starter, responder: Responder) -> None:
    """All servers down, no setServFailWhenNoServer: the query is dropped."""
    proc = start_proc(impl, NO_SERVER, {"backend": responder.address}, ready="Console ACL")
    assert query(proc.addr(), "noserver.example.", timeout=1.0) is None
    assert responder.count("noserver.example.") == 0


def test_no_server_servfail_same_bytes(start_proc: Starter, responder: Responder) -> None:
    """With setServFailWhenNoServer(true): SERVFAIL, QR set, RA unset, query flags kept, EDNS
    re-added when the query had it; byte-identical to real dnsdist over UDP and TCP."""
    conf = NO_SERVER + "setServFailWhenNoServer(true)\n"
    impls = available_impls()
    answers = {i: _no_server_answers(start_proc(i, conf, {"backend": responder.address},
                                                ready="Console ACL")) for i in impls}
    py = answers["pydist"]
    for label, wire in py.items():
        assert wire is not None, label
        m = dns.message.from_wire(wire)
        assert m.rcode() == dns.rcode.SERVFAIL and m.flags & dns.flags.QR
        assert not m.flags & dns.flags.RA
        assert (m.edns >= 0) == (not label.startswith("plain")), label
        if label.startswith("do+ad+cd"):
            assert m.flags & dns.flags.AD and m.flags & dns.flags.CD
            assert m.ednsflags & dns.flags.DO
    if "dnsdist" in answers:
        assert py == answers["dnsdist"]
    assert responder.count("noserver.example.") == 0
