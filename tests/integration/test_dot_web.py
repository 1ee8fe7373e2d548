"""A DoT listener in /metrics and the API, side by side with real dnsdist 1.7.3: its proto
label and type, the TLS session, version and handshake-failure samples and keys, and the
values the same DoT traffic gives them."""
from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from tests.conftest import Starter, available_impls
from tests.helpers.dot import dot_query, make_cert_set
from tests.helpers.pydist_proc import poll_until
from tests.helpers.web import get_json, metric_samples, request

pytestmark = pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")
CONFIG = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addTLSLocal("127.0.0.1:{portdot}", "CERT", "KEY")
newServer({address="{backend}"})
webserver("127.0.0.1:{portweb}")
setWebserverConfig({apiKey="key1"})
"""
HEADERS = {"X-API-Key": "key1"}


def dot_samples(text: str, port: int) -> dict[str, float]:
    return {k.replace(str(port), "PORT"): v for k, v in metric_samples(text).items()
            if f"frontend=127.0.0.1:{port}," in k}


def test_dot_frontend_metrics_and_api_match_dnsdist(start_proc: Starter, responder,
                                                    tmp_path: Path) -> None:
    certs = make_cert_set(tmp_path / "certs")
    conf = CONFIG.replace("CERT", certs.cert).replace("KEY", certs.key)
    seen: dict[str, tuple[dict[str, float], dict]] = {}
    for impl in available_impls():
        proc = start_proc(impl, conf, {"backend": responder.address})
        dot = proc.addr("portdot")
        for i in range(2):
            assert dot_query(dot, f"web{i}.example.", certs.ca_path) is not None
        with socket.create_connection(dot) as s:      # plaintext on the TLS port
            s.sendall(struct.pack("!H", 12) + b"\x00" * 12)
            s.settimeout(3)
            assert s.recv(100) == b""
        web = int(proc.values["portweb"])

        def scraped(web: int = web, port: int = dot[1]) -> dict[str, float]:
            _, _, body = request(web, "/metrics", HEADERS)
            return dot_samples(body.decode(), port)
        poll_until(lambda: scraped().get(
            'dnsdist_frontend_tcpcurrentconnections{frontend=127.0.0.1:PORT,'
            'proto=TCP (DNS over TLS),thread=0}') == 0)
        api = get_json(web, "/api/v1/servers/localhost", HEADERS)
        front = next(f for f in api["frontends"] if f["address"] == f"127.0.0.1:{dot[1]}")
        seen[impl] = (scraped(), front)
    py, dd = seen["pydist"], seen["dnsdist"]
    # moving averages and the concurrency peak depend on when dnsdist's worker sees each close
    timing = ("tcpavgconnectionduration", "tcpavgqueriesperconnection",
              "tcpmaxconcurrentconnections")
    assert {k: v for k, v in py[0].items() if not any(t in k for t in timing)} == \
        {k: v for k, v in dd[0].items() if not any(t in k for t in timing)}
    assert py[0]['dnsdist_frontend_tlsqueries{frontend=127.0.0.1:PORT,proto=TCP (DNS over TLS),'
                 'thread=0,tls=tls13}'] == 2
    assert set(py[1]) == set(dd[1])
    for key in ("type", "tls13Queries", "tlsNewSessions", "tcpDiedReadingQuery",
                "tlsHandshakeFailuresNoSharedCipher", "queries"):
        assert py[1][key] == dd[1][key], key
