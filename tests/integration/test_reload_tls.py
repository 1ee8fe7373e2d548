"""A DoT listener across reloads: kept with its ticket keys when unchanged (a session ticket
from before the reload resumes after it, on the same socket); a certificate that does not
load refuses the reload and the listener goes on as it was."""
from __future__ import annotations

import socket
import ssl
from pathlib import Path

import dns.message

from tests.conftest import Starter
from tests.helpers.dot import CertSet, client_context, make_cert_set
from tests.helpers.pydist_proc import DnsdistProcess
from tests.helpers.reload import CONSOLE, dump_stats, listener_inodes, reload_by_signal
from tests.helpers.responder import Responder

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
""" + CONSOLE + """
newServer({address="{backend}"})
addTLSLocal("127.0.0.1:{portt}", "{cert}", "{key}")
"""


def _dot(port: int, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None
         ) -> tuple[bool, ssl.SSLSession | None]:
    """One DoT query; (whether the session was resumed, the session to resume next time)."""
    wire = dns.message.make_query("dot.example.", "A").to_wire()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="dot.test", session=session) as s:
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(s.recv(2), "big")
            data = b""
            while len(data) < size:
                data += s.recv(size - len(data))
            assert dns.message.from_wire(data).answer
            return s.session_reused, s.session


def _start(start_proc: Starter, responder: Responder, tmp_path: Path
           ) -> tuple[CertSet, DnsdistProcess, int]:
    certs = make_cert_set(tmp_path / "certs")
    proc = start_proc("pydist", CONF, {"backend": responder.address, "cert": certs.cert,
                                       "key": certs.key})
    assert proc.proc is not None
    return certs, proc, int(proc.values["portt"])  # type: ignore[arg-type]


def test_unchanged_dot_listener_keeps_socket_and_ticket_keys(
        start_proc: Starter, responder: Responder, tmp_path: Path) -> None:
    certs, proc, port = _start(start_proc, responder, tmp_path)
    ctx = client_context(certs.ca_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2      # the ticket arrives in the handshake
    _, session = _dot(port, ctx)
    assert proc.proc is not None
    before = listener_inodes(proc.proc.pid, port)
    reload_by_signal(proc, proc.conf_text + 'addAction("x.test.", DropAction())\n')
    resumed, _ = _dot(port, ctx, session)
    assert resumed
    assert proc.proc is not None
    assert listener_inodes(proc.proc.pid, port) == before and len(before) == 1


def test_certificate_that_does_not_load_refuses_the_reload(
        start_proc: Starter, responder: Responder, tmp_path: Path) -> None:
    certs, proc, port = _start(start_proc, responder, tmp_path)
    ctx = client_context(certs.ca_path)
    _dot(port, ctx)
    broken = proc.conf_text.replace(certs.cert, str(tmp_path / "missing.pem"))
    line = reload_by_signal(proc, broken)
    assert "reload failed" in line and "missing.pem" in line, line
    assert _dot(port, ctx)[1] is not None                # still served, as before
    assert dump_stats(proc)["pydist-reloads-failed"] == 1
