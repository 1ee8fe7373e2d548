"""A console client that stalls mid-frame never stops DNS service (one loop serves both)."""
from __future__ import annotations

import socket
import subprocess

from tests.conftest import Starter
from tests.helpers.pydist_proc import query

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("%s")
newServer({address="{backend}"})
""" % KEY


def test_dns_answered_while_console_client_stalls(start_proc: Starter, responder: object) -> None:
    proc = start_proc("pydist", CONF, {"backend": responder.address},
                      ready=r"Accepting control connections")
    console_port = int(proc.values["portconsole"])
    stalled = []
    try:
        for size in (10, 24 + 2):   # half a nonce; a nonce then half a length prefix
            s = socket.create_connection(("127.0.0.1", console_port), timeout=5)
            s.sendall(b"\x01" * size)
            stalled.append(s)
        for i in range(20):
            resp = query(proc.addr(), f"stall{i}.example.")
            assert resp is not None, f"query {i} unanswered while a console client stalls"
        # and the console itself still serves a well-behaved client
        res = subprocess.run(["dnsdist", "-C", str(proc.conf), "-e", "showVersion()"],
                             capture_output=True, text=True, timeout=10)
        assert res.stdout == "dnsdist 1.7.3\n"
    finally:
        for s in stalled:
            s.close()
    assert proc.alive()
