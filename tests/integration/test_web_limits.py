"""Hostile and slow web clients against a serving pydist: slowloris, huge headers, garbage,
a thousand connections, the web ACL; DNS keeps answering throughout (facts §7 limits are
pydist's own: dnsdist 1.7.3 has none but maxConcurrentConnections)."""
from __future__ import annotations

import base64
import os
import socket
import time
from typing import Any

from pydist.web.server import REQUEST_TIMEOUT
from tests.conftest import Starter
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query, run_cli
from tests.helpers.web import request

CONFIG = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
webserver("127.0.0.1:{portweb}")
setWebserverConfig({apiKey="key1", maxConcurrentConnections=MAXCONN, acl=ACL})
"""
KEY = {"X-API-Key": "key1"}


def start(start_proc: Starter, responder: Any, maxconn: int = 100,
          acl: str = "127.0.0.1/32, ::1/128") -> DnsdistProcess:
    conf = CONFIG.replace("MAXCONN", str(maxconn)).replace("ACL", f'"{acl}"')
    return start_proc("pydist", conf, {"backend": responder.address})


def web(p: DnsdistProcess) -> tuple[str, int]:
    return "127.0.0.1", int(p.values["portweb"])  # type: ignore[arg-type]


def closed_by_peer(s: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        return data


def dns_answers(p: DnsdistProcess, n: int) -> int:
    return sum(query(p.addr(), f"q{i}.example", timeout=1.5) is not None for i in range(n))


def test_slowloris_huge_headers_and_garbage_are_cut_off(start_proc: Starter,
                                                         responder: Any) -> None:
    p = start(start_proc, responder)
    slow = socket.create_connection(web(p))
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    opened = time.monotonic()
    big = socket.create_connection(web(p))
    big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
    assert (closed_by_peer(big, 5.0) or b"").startswith(b"HTTP/1.0 431 ")
    junk = socket.create_connection(web(p))
    junk.sendall(b"\x16\x03\x01\x00\xa5garbage\r\n\r\n")
    assert (closed_by_peer(junk, 5.0) or b"").startswith(b"HTTP/1.0 400 ")
    assert dns_answers(p, 10) == 10, "DNS must not wait for web clients"
    assert request(web(p)[1], "/metrics", KEY)[0] == 200
    assert closed_by_peer(slow, REQUEST_TIMEOUT + 5.0) == b""
    assert time.monotonic() - opened >= REQUEST_TIMEOUT - 0.5
    for s in (slow, big, junk):
        s.close()
    assert p.alive()


def test_a_thousand_connections_do_not_stall_dns(start_proc: Starter, responder: Any) -> None:
    p = start(start_proc, responder, maxconn=50)
    socks: list[socket.socket] = []
    try:
        for _ in range(1000):
            socks.append(socket.create_connection(web(p), timeout=5.0))
        assert dns_answers(p, 20) == 20
        # beyond maxConcurrentConnections the server closes at once
        refused = sum(closed_by_peer(s, 0.01) is not None for s in socks[-100:])
        assert refused >= 90, refused
    finally:
        for s in socks:
            s.close()
    status = poll_until(lambda: request(web(p)[1], "/jsonstat?command=stats", KEY)[0] == 200,
                        timeout=REQUEST_TIMEOUT + 5.0)
    assert status and p.alive()


def test_web_acl_closes_without_answer(start_proc: Starter, responder: Any) -> None:
    p = start(start_proc, responder, acl="127.0.0.2/32")
    s = socket.create_connection(web(p))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-API-Key: key1\r\n\r\n")
    assert closed_by_peer(s, 5.0) == b""
    s.close()


def test_webserver_started_from_the_console(start_proc: Starter, responder: Any,
                                            port: int) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    conf = (f'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{{port}}")\n'
            f'controlSocket("127.0.0.1:{{portconsole}}")\nsetKey("{key}")\n')
    p = start_proc("pydist", conf)
    cmd = (f'webserver("127.0.0.1:{port}") setWebserverConfig({{apiKey="k"}}) '
           'showWebserverConfig()')
    res = run_cli("pydist", ["-C", str(p.conf), "-e", cmd])
    assert "Current web server configuration:\nACL: 127.0.0.1/32, ::1/128\n" in res.stdout
    assert "API key: set\n" in res.stdout, res.stdout
    p.wait_for(f"^Webserver launched on 127.0.0.1:{port}$")
    status, headers, body = request(port, "/jsonstat?command=stats", {"X-API-Key": "k"})
    assert status == 200 and b'"queries": 0' in body


def test_bind_failure_is_logged_and_serving_goes_on(start_proc: Starter, responder: Any) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    conf = (CONFIG.replace("{portweb}", str(taken)).replace("MAXCONN", "10")
            .replace("ACL", '"127.0.0.1"'))
    p = start_proc("pydist", conf, {"backend": responder.address})
    assert (f"Unable to bind to webserver socket on 127.0.0.1:{taken}: binding socket to "
            f"127.0.0.1:{taken}: Address already in use") in p.output
    assert query(p.addr(), "a.example") is not None
    holder.close()
