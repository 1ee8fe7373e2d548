"""Listener connection limits on pydist and real dnsdist 1.7.3: maxConcurrentTCPConnections on
setLocal/addLocal, addTLSLocal and addDOHLocal (a connection beyond it closed right after
accept, counted nowhere), and setMaxTCPConnectionDuration."""
from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.dot import CertSet, certs  # noqa: F401 -- the certs fixture
from tests.helpers.pipeline import closed_by_peer, connect, framed, read_answers
from tests.helpers.pydist_proc import poll_until, run_cli

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}", {maxConcurrentTCPConnections=2})
addTLSLocal("127.0.0.1:{portdot}", "{cert}", "{key}", {maxConcurrentTCPConnections=2})
addDOHLocal("127.0.0.1:{portdoh}", nil, nil, "/dns-query", {maxConcurrentTCPConnections=2})
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
setTCPRecvTimeout(10)
newServer{address="{backend}"}
""".replace("KEY", KEY)


def _answered(s: socket.socket, qid: int) -> bool:
    s.sendall(framed("limit.test.", qid))
    answers, _ = read_answers(s, 1, timeout=3)
    return len(answers) == 1


def _doh_answered(s: socket.socket) -> bool:
    s.sendall(b"GET /dns-query?dns=AAABAAABAAAAAAAABWxpbWl0BHRlc3QAAAEAAQ HTTP/1.1\r\n"
              b"Host: doh.test\r\n\r\n")
    s.settimeout(3)
    try:
        return s.recv(65536).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _max_concurrent(proc, port_name: str) -> str:
    out = run_cli(proc.impl, ["-C", str(proc.conf), "-e", "showTCPStats()"]).stdout
    rows = [ln.split() for ln in out.splitlines() if f":{proc.values[port_name]} " in ln]
    return max(row[3] for row in rows)       # the TCP row (a plain listener has a UDP one)


@pytest.mark.parametrize("listener", ["port", "portdot", "portdoh"])
@pytest.mark.parametrize("impl", BOTH)
def test_max_concurrent_tcp_connections(impl: str, listener: str, start_proc: Starter,
                                        responder, certs: CertSet) -> None:
    proc = start_proc(impl, CONF, {"backend": responder.address, "cert": certs.cert,
                                   "key": certs.key})
    where = proc.addr(listener)
    ca = certs.ca_path if listener == "portdot" else None
    ask = _doh_answered if listener == "portdoh" else (lambda s: _answered(s, 1))
    first, second = connect(where, ca), connect(where, ca)
    try:
        assert ask(first) and ask(second)
        with socket.create_connection(where, timeout=3) as third:
            assert closed_by_peer(third, 3)              # closed right after accept
        first.close()

        def a_new_one_is_served() -> bool:
            try:
                with connect(where, ca) as s:
                    return ask(s)
            except OSError:            # still one too many: reset during the TLS handshake
                return False
        poll_until(a_new_one_is_served, timeout=5)
        assert ask(second)
    finally:
        first.close()
        second.close()
    assert _max_concurrent(proc, listener) == "2"


DURATION_CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setTCPRecvTimeout(10)
setMaxTCPConnectionDuration(2)
newServer{address="{backend}"}
"""


@pytest.mark.parametrize("impl", BOTH)
def test_max_tcp_connection_duration(impl: str, start_proc: Starter, responder) -> None:
    """An idle connection is closed once its duration is over (the read timeout shortened to
    what is left), and a busy one stops being served then."""
    proc = start_proc(impl, DURATION_CONF, {"backend": responder.address})
    started = time.monotonic()
    with connect(proc.addr(), timeout=10) as idle, connect(proc.addr(), timeout=10) as busy:
        assert _answered(idle, 1) and _answered(busy, 2)
        served = 0
        while time.monotonic() - started < 4 and _answered(busy, 3):
            served += 1
            time.sleep(0.2)                 # a query every 0.2 s: the duration is the subject
        busy_for = time.monotonic() - started
        assert closed_by_peer(idle, 4)
        idle_for = time.monotonic() - started
    assert 1.0 <= busy_for <= 3.2, busy_for
    assert 1.0 <= idle_for <= 3.5, idle_for
    assert served >= 3


PER_CONN_CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setMaxTCPQueriesPerConnection(3)
setMaxTCPConnectionsPerClient(1)
newServer{address="{backend}"}
"""


@pytest.mark.parametrize("impl", BOTH)
def test_queries_per_connection_and_connections_per_client(impl: str, start_proc: Starter,
                                                           responder) -> None:
    """Ten pipelined queries with setMaxTCPQueriesPerConnection(3): n+1 answered, then the
    connection closed; a second connection from the same client closed at once."""
    proc = start_proc(impl, PER_CONN_CONF, {"backend": responder.address})
    with connect(proc.addr()) as s:
        assert _answered(s, 0)
        with socket.create_connection(proc.addr(), timeout=3) as other:
            assert closed_by_peer(other, 3)
        s.sendall(b"".join(framed(f"q{i}.limit.test.", i) for i in range(1, 10)))
        answers, closed = read_answers(s, 10, timeout=5)
    assert [a.id for a in answers] == [1, 2, 3] and closed
