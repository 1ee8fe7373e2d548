"""Bad DoT clients: plaintext on the TLS port, a handshake that stops halfway, only old protocol
versions, no shared cipher, an idle connection. Each is refused and counted as dnsdist 1.7.3
counts it (the same showTCPStats/showTLSErrorCounters figures on both), and a good client is
served meanwhile."""
from __future__ import annotations

import socket
import ssl
import struct
import warnings
from pathlib import Path

from tests.conftest import Starter, available_impls
from tests.helpers.dot import (
    CertSet,
    client_context,
    dot_query,
    frontend_counters,
    make_cert_set,
)
from tests.helpers.pydist_proc import DnsdistProcess, poll_until

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = f"""setSecurityPollSuffix("")
setLocal("127.0.0.1:{{port}}")
controlSocket("127.0.0.1:{{portctl}}")
setKey("{KEY}")
setTCPRecvTimeout(1)
addTLSLocal("127.0.0.1:{{portdot}}", "{{cert}}", "{{key}}",
            {{{{minTLSVersion="tls1.2", ciphers="ECDHE-RSA-AES256-GCM-SHA384"}}}})
newServer{{{{address="{{backend}}"}}}}
"""
QUERY = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")


def _conf(certs: CertSet, backend: str) -> str:
    text = CONF.replace("{{", "{").replace("}}", "}")
    return (text.replace("{cert}", certs.cert).replace("{key}", certs.key)
            .replace("{backend}", backend))


def closed_by_server(sock: socket.socket, timeout: float = 4.0) -> bool:
    """True when the server closed the connection (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def old_versions_client() -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def run_bad_clients(proc: DnsdistProcess, certs: CertSet) -> None:
    dot = proc.addr("portdot")
    # plaintext DNS on the TLS port: no answer, the connection is closed
    with socket.create_connection(dot) as s:
        s.sendall(struct.pack("!H", len(QUERY)) + QUERY)
        assert closed_by_server(s)
    # only TLS 1.0/1.1 offered to a tls1.2 minimum: refused
    with socket.create_connection(dot) as raw:
        try:
            old_versions_client().wrap_socket(raw).close()
            raise AssertionError("an old-versions client completed a handshake")
        except (ssl.SSLError, ConnectionError):
            pass
    # TLS 1.2 with none of the listener's ciphers
    ctx = client_context(certs.ca_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with socket.create_connection(dot) as raw:
        try:
            ctx.wrap_socket(raw, server_hostname="dot.test").close()
            raise AssertionError("a client without a shared cipher completed a handshake")
        except (ssl.SSLError, ConnectionError):
            pass
    # a handshake that stops halfway and a connection that stays idle after its handshake,
    # both held while a good client is served
    stalled = socket.create_connection(dot)
    stalled.sendall(b"\x16\x03\x01\x00\xc8\x01\x00\x00")          # a ClientHello, cut short
    idle = client_context(certs.ca_path).wrap_socket(socket.create_connection(dot),
                                                     server_hostname="dot.test")
    ans = dot_query(dot, "good.example.", certs.ca_path)
    assert ans is not None and ans.answer[0][0].address == "192.0.2.1"
    assert closed_by_server(stalled) and closed_by_server(idle)
    stalled.close()
    idle.close()


def test_bad_clients_refused_and_counted_as_dnsdist(start_proc: Starter, tmp_path: Path,
                                                    responder) -> None:
    certs = make_cert_set(tmp_path / "certs")
    seen = {}
    for impl in available_impls():
        proc = start_proc(impl, _conf(certs, responder.address))
        run_bad_clients(proc, certs)
        poll_until(lambda p=proc: frontend_counters(p)["Connections"] == "0", timeout=5)
        seen[impl] = frontend_counters(proc)
        assert seen[impl]["TLS 1.3"] == "1", seen[impl]      # the good client's query
        assert proc.alive()
    assert 0.009 < float(seen["pydist"]["Avg queries/conn"]) < 0.011   # 0, 0, 0, 1, 0, 0
    assert seen["pydist"]["No shared cipher"] == "1"
    assert float(seen["pydist"]["Avg duration"]) > 15                   # two held >= 1 s
    if len(seen) == 2:
        for impl in seen:            # the moving averages depend on timing: checked above
            seen[impl].pop("Avg duration")
            seen[impl].pop("Avg queries/conn")
        assert seen["pydist"] == seen["dnsdist"], repr(seen)
