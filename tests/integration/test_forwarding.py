"""Forwarding over UDP and TCP, IPv4 and IPv6, against pydist and real dnsdist."""
from __future__ import annotations

import dns.flags
import dns.rdatatype
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.pydist_proc import query
from tests.helpers.responder import Responder

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addLocal("[::1]:{port}")
newServer({address="{backend}"})
"""


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("backend_host", ["127.0.0.1", "::1"])
def test_forward_udp_tcp_v4_v6(impl: str, backend_host: str, start_proc: Starter,
                               responder_factory: ResponderFactory) -> None:
    """Every client transport and family reaches the backend; the answer is relayed intact."""
    backend = responder_factory(host=backend_host)
    proc = start_proc(impl, CONF, {"backend": backend.address})
    for family in (4, 6):
        for tcp in (False, True):
            name = f"fwd-{family}-{int(tcp)}.example."
            resp = query(proc.addr(family=family), name, "TXT", tcp=tcp, qid=4242)
            assert resp is not None, f"no answer over {'tcp' if tcp else 'udp'}/v{family}"
            assert resp.id == 4242
            assert resp.flags & dns.flags.QR and resp.flags & dns.flags.RD
            txt = resp.answer[0][0].strings[0].decode()
            # the backend saw the query on the same transport the client used
            assert txt == ("tcp" if tcp else "udp")
            assert backend.count(name) == 1
    assert proc.alive()


@pytest.mark.parametrize("impl", BOTH)
def test_forward_restores_id_and_rd(impl: str, start_proc: Starter, responder: Responder) -> None:
    """The backend sees dnsdist's own ID; the client gets its ID and its RD bit back."""
    proc = start_proc(impl, CONF, {"backend": responder.address})
    resp = query(proc.addr(), "nord.example.", "A", qid=777, flags=0)
    assert resp is not None and resp.id == 777
    assert not resp.flags & dns.flags.RD
    assert resp.answer[0].rdtype == dns.rdatatype.A
