"""Bad input on DoH listeners, pydist beside dnsdist 1.7.3: HTTP/1 garbage gets h2o's bare
400, broken or oversized HTTP/2 frames a GOAWAY with the same error code, oversized bodies a
400, idle HTTP/2 connections a GOAWAY after idleTimeout, clear text on the HTTPS port no
answer; each costs only its own connection, the next client is served."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Starter, available_impls
from tests.helpers.doh import b64, client, do, query_wire, raw_exchange
from tests.helpers.dot import make_cert_set

pytestmark = pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addDOHLocal("127.0.0.1:{portdoh}", "CERT", "PRIV")
addDOHLocal("127.0.0.1:{portplain}", nil, nil, "/dns-query", {idleTimeout=1})
newServer({address="{backend}"})
"""
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def goaways(data: bytes) -> list[tuple[int, bytes]]:
    """(error code, debug text) of each GOAWAY frame in a server's HTTP/2 byte stream."""
    out, i = [], 0
    while i + 9 <= len(data):
        length, kind = int.from_bytes(data[i:i + 3], "big"), data[i + 3]
        payload = data[i + 9:i + 9 + length]
        if kind == 7 and len(payload) >= 8:
            out.append((int.from_bytes(payload[4:8], "big"), payload[8:]))
        i += 9 + length
    return out


def exchanges(proc, ca: str) -> dict[str, object]:
    plain, tls = proc.addr("portplain"), proc.addr("portdoh")
    good = f"/dns-query?dns={b64(query_wire('good.example.'))}"
    out: dict[str, object] = {}
    out["h1-garbage"] = raw_exchange(plain, b"garbage\r\n\r\n")
    out["h1.0-no-query"] = raw_exchange(plain, b"GET /dns-query HTTP/1.0\r\n\r\n")
    bad_cont = PREFACE + b"\x00\x00\x04\x09\x00\x00\x00\x00\x01garbage"
    reply = raw_exchange(plain, bad_cont)
    out["h2-bad-continuation"] = (reply.endswith(b"<timeout>"), [g[0] for g in goaways(reply)])
    reply = raw_exchange(plain, PREFACE + EMPTY_SETTINGS + b"\xff" * 30)
    out["h2-oversized-frame"] = (reply.endswith(b"<timeout>"), [g[0] for g in goaways(reply)])
    start = time.monotonic()
    reply = raw_exchange(plain, PREFACE + EMPTY_SETTINGS, timeout=8)
    out["h2-idle"] = (time.monotonic() - start < 5, goaways(reply)[-1:])
    reply = raw_exchange(tls, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    out["clear-text-on-tls"] = b"HTTP/" in reply
    big = b"\xff" * 100000
    for http2 in (False, True):
        with client(http2, ca) as c:
            r = do(c, f"https://127.0.0.1:{tls[1]}", "POST", "/dns-query", big)
            out[f"oversized-body-h{2 if http2 else 1}"] = (r.status, r.body)
            out[f"after-h{2 if http2 else 1}"] = do(c, f"https://127.0.0.1:{tls[1]}", "GET",
                                                    good).status
    return out


def test_bad_input_is_refused_as_dnsdist_does(start_proc: Starter, responder,
                                              tmp_path: Path) -> None:
    certs = make_cert_set(tmp_path / "certs")
    conf = CONF.replace("CERT", certs.cert).replace("PRIV", certs.key)
    seen = {}
    for impl in available_impls():
        proc = start_proc(impl, conf, {"backend": responder.address})
        seen[impl] = exchanges(proc, certs.ca_path)
        assert proc.alive()
    py, dd = seen["pydist"], seen["dnsdist"]
    assert dd["h1-garbage"] == (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; "
                                b"charset=utf-8\r\nConnection: close\r\nContent-Length: 11\r\n"
                                b"\r\nBad Request")
    assert dd["h2-bad-continuation"] == (False, [1])          # PROTOCOL_ERROR, closed
    assert dd["h2-oversized-frame"] == (False, [6])           # FRAME_SIZE_ERROR, closed
    assert dd["h2-idle"] == (True, [(0, b"idle timeout")])
    assert dd["oversized-body-h1"] == (400, b"The DNS query could not be parsed")
    assert dd["after-h1"] == dd["after-h2"] == 200
    for key, value in dd.items():
        assert py[key] == value, key
