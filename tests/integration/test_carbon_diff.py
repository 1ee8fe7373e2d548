"""carbonServer(): the Graphite lines pydist sends, against real dnsdist 1.7.3's: the same names
in the same order (dnsdist's misspellings included), the same counter values after the same
queries, one batch per connection at startup and every interval, and a refused connection
logged in dnsdist's words."""
from __future__ import annotations

import re
import socket

import pytest

from tests.conftest import BOTH, ResponderFactory, Starter, available_impls
from tests.helpers.pydist_proc import poll_until, query
from tests.helpers.receivers import serve_connections

CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addLocal("127.0.0.1:{port2}")
newServer{address="{backend}", name="back.one"}
newServer{address="{other}", pool="other"}
getPool(""):setCache(newPacketCache(100))
carbonServer("127.0.0.1:CARBON", "testhost", 1, "ns", "inst")
"""


class Graphite:
    """A carbon receiver: each connection's bytes are one batch."""

    def __init__(self) -> None:
        self.batches: list[str] = []
        self.port = serve_connections(self._read)

    def _read(self, conn: socket.socket) -> None:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        self.batches.append(data.decode())


def _lines(batch: str, port: int, other: int, listen: tuple[int, int]) -> dict[str, str]:
    """name -> value, with the ports that differ between runs replaced by names."""
    out = {}
    for line in batch.split("\r\n"):
        if line:
            name, value, _ = line.split(" ")
            name = name.replace(f":{other}.", ":OTHER.").replace(f":{listen[0]}_", ":L0_")
            out[name.replace(f":{listen[1]}_", ":L1_")] = value
    return out


def _batch_after_traffic(impl: str, start_proc: Starter,
                         responder_factory: ResponderFactory) -> dict[str, str]:
    graphite = Graphite()
    backend, other = responder_factory(), responder_factory()
    proc = start_proc(impl, CONF.replace("CARBON", str(graphite.port)),
                      {"backend": backend.address, "other": other.address})
    for name in ("a.test.", "a.test.", "b.test."):          # one cache hit
        assert query(proc.addr(), name) is not None
    listen = (proc.addr()[1], proc.addr("port2")[1])

    def settled() -> dict[str, str] | None:
        for batch in reversed(graphite.batches):
            lines = _lines(batch, proc.addr()[1], other.port, listen)
            if lines.get("ns.testhost.inst.queries") == "3":
                return lines
        return None
    # a batch at startup, then one a second: wait for the second as well
    lines = poll_until(lambda: settled() if len(graphite.batches) >= 2 else None, timeout=8.0)
    assert isinstance(lines, dict)
    return lines


@pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")
def test_batches_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory) -> None:
    py, dd = (_batch_after_traffic(impl, start_proc, responder_factory)
              for impl in ("pydist", "dnsdist"))
    assert list(py) == list(dd)              # same names, same order
    assert all(re.fullmatch(r"[-0-9.e+]+", v) for v in py.values())
    assert py["ns.testhost.inst.servers.back_one.queries"] == "2"
    assert py["ns.testhost.inst.frontends.127_0_0_1:L0_udp.queries"] == "3"
    assert py["ns.testhost.inst.pools._default_.cache-hits"] == "1"
    counters = [k for k in py if re.search(r"\.(queries|responses|cache-(hits|misses|entries)"
                                           r"|servers(-up)?|drops|rule-drop)$", k)]
    assert len(counters) > 10
    assert {k: py[k] for k in counters} == {k: dd[k] for k in counters}




@pytest.mark.parametrize("impl", BOTH)
def test_refused_connection_is_logged(impl: str, start_proc: Starter, responder) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'newServer{address="{backend}"}\n' f'carbonServer("127.0.0.1:{port}", "h", 1)\n')
    proc = start_proc(impl, conf, {"backend": responder.address})
    assert proc.wait_for("Problem sending carbon data: failed in writen2: Connection refused")
