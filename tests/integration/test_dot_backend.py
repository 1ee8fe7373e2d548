"""newServer{tls="openssl"}: queries and health checks over TLS to a loopback DoT upstream (real
dnsdist 1.7.3 terminating DoT when installed), certificate validation, reuse, resumption,
truncation for UDP clients, and real dnsdist using pydist's addTLSLocal as its DoT backend."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import dns.flags
import dnslib
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.dot import CertSet, dnsdist_dot_server, make_cert_set
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query, run_cli

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
UPSTREAM = "dnsdist" if shutil.which("dnsdist") else "pydist"
HEAD = f"""setSecurityPollSuffix("")
setLocal("127.0.0.1:{{port}}")
controlSocket("127.0.0.1:{{portctl}}")
setKey("{KEY}")
"""


@pytest.fixture
def certs(tmp_path: Path) -> CertSet:
    return make_cert_set(tmp_path / "certs")


def start_upstream(start_proc: Starter, certs: CertSet, backend: str, cert: str | None = None,
                   key: str | None = None) -> DnsdistProcess:
    """A loopback DoT server (real dnsdist when installed) in front of a responder."""
    conf = dnsdist_dot_server(certs, backend, port_name="portdot")
    if cert:
        conf = conf.replace(certs.cert, cert).replace(certs.key, key or "")
    return start_proc(UPSTREAM, conf, ready="Listening on .* for TLS")


def console(proc: DnsdistProcess, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout + res.stderr


def backend_row(proc: DnsdistProcess, name: str) -> dict[str, int]:
    """Reused connections, total connections and TLS resumptions from showTCPStats()."""
    out = console(proc, "showTCPStats()")
    backends = out.split("Backends:")[1].splitlines()
    for line in backends:
        cells = re.split(r"\s+", line.strip())
        if len(cells) > 3 and cells[1] == name:
            return {"total": int(cells[11]), "reused": int(cells[12]),
                    "resumptions": int(cells[13])}
    raise AssertionError(out)


def dot_server(address: str, certs: CertSet, name: str, extra: str = "") -> str:
    return (f'newServer{{address="{address}", tls="openssl", caStore="{certs.ca_path}", '
            f'subjectName="dot.test", name="{name}"{extra}}}\n')


@pytest.mark.parametrize("impl", BOTH)
def test_udp_and_tcp_clients_served_over_dot(impl: str, start_proc: Starter, responder,
                                             certs: CertSet) -> None:
    up = start_upstream(start_proc, certs, responder.address)
    dot = f"127.0.0.1:{up.values['portdot']}"
    proc = start_proc(impl, HEAD + dot_server(dot, certs, "dot"))
    for i in range(4):
        for tcp in (False, True):
            ans = query(proc.addr(), f"q{i}{int(tcp)}.example.", tcp=tcp)
            assert ans is not None and ans.answer[0][0].address == "192.0.2.1", (i, tcp)
    assert responder.count("q30.example.") == 1 and responder.count("q31.example.") == 1
    row = backend_row(proc, "dot")
    assert row["total"] >= 1, row
    if impl == "pydist":
        # pydist's pool reuses idle connections across clients (dnsdist 1.7.3 opened one per
        # client connection here and resumed none)
        assert row["reused"] >= 1, row
    assert row["resumptions"] == 0, row     # health checks do not count (see below)


@pytest.mark.parametrize("impl", BOTH)
def test_certificate_validation_failures(impl: str, start_proc: Starter, responder,
                                         certs: CertSet) -> None:
    """Unknown CA, self-signed, wrong name, expired: down (pydist logs why); the good server
    keeps serving."""
    good = start_upstream(start_proc, certs, responder.address)
    old = certs.issue("expired", expired=True)
    expired = start_upstream(start_proc, certs, responder.address, str(old.cert_path),
                             str(old.key_path))
    own = certs.issue("selfsigned", self_signed=True)
    selfsigned = start_upstream(start_proc, certs, responder.address, str(own.cert_path),
                                str(own.key_path))
    g = f"127.0.0.1:{good.values['portdot']}"
    e = f"127.0.0.1:{expired.values['portdot']}"
    ss = f"127.0.0.1:{selfsigned.values['portdot']}"
    conf = HEAD + (f'newServer{{address="{g}", tls="openssl", name="unknownca"}}\n'
                   + dot_server(ss, certs, "selfsigned")
                   + dot_server(g, certs, "wrongname").replace("dot.test", "wrong.test")
                   + dot_server(e, certs, "expired")
                   + dot_server(e, certs, "novalidation", ", validateCertificates=false")
                   + dot_server(g, certs, "good"))
    proc = start_proc(impl, conf, ready=None)
    for name in ("unknownca", "selfsigned", "wrongname", "expired"):
        proc.wait_for(rf"Marking downstream {name} \(.*\) as 'down'")
    for name in ("novalidation", "good"):
        proc.wait_for(rf"Marking downstream {name} \(.*\) as 'up'")
    if impl == "pydist":
        proc.wait_for(r"TLS handshake with backend unknownca .* failed: certificate verify "
                      r"failed: unable to get local issuer certificate")
        proc.wait_for(r"backend wrongname .* failed: .*hostname mismatch")
        proc.wait_for(r"backend expired .* failed: .*certificate has expired")
        proc.wait_for(r"backend selfsigned .* failed: certificate verify failed: self[- ]signed")
    for i in range(3):
        assert query(proc.addr(), f"still{i}.example.", tcp=bool(i % 2)) is not None
    assert proc.alive()


def _big(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    r = q.reply()
    for i in range(12):
        r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.TXT, ttl=60,
                               rdata=dnslib.TXT("x" * 100 + str(i))))
    return r


@pytest.mark.parametrize("impl", BOTH)
def test_udp_answer_larger_than_edns_size_is_truncated(impl: str, start_proc: Starter,
                                                       responder_factory: ResponderFactory,
                                                       certs: CertSet) -> None:
    """facts §9: a UDP query towards a DoT server gets TC=1 when the answer exceeds its size."""
    big = responder_factory(_big)
    up = start_upstream(start_proc, certs, big.address)
    proc = start_proc(impl, HEAD + dot_server(f"127.0.0.1:{up.values['portdot']}", certs, "d"))
    small = query(proc.addr(), "big.example.", "TXT")
    assert small is not None and small.flags & dns.flags.TC and not small.answer
    full = query(proc.addr(), "big2.example.", "TXT", use_edns=0, payload=4096)
    assert full is not None and not full.flags & dns.flags.TC and len(full.answer[0]) == 12
    tcp = query(proc.addr(), "big3.example.", "TXT", tcp=True)
    assert tcp is not None and len(tcp.answer[0]) == 12


@pytest.mark.skipif(not shutil.which("dnsdist"), reason="needs real dnsdist as the client")
def test_real_dnsdist_uses_pydist_as_dot_backend(start_proc: Starter, responder,
                                                 certs: CertSet) -> None:
    front = start_proc("pydist", dnsdist_dot_server(certs, responder.address, port_name="portdot"))
    proc = start_proc("dnsdist", HEAD + dot_server(f"127.0.0.1:{front.values['portdot']}",
                                                   certs, "pydist"))
    for tcp in (False, True):
        ans = query(proc.addr(), f"via-pydist{int(tcp)}.example.", tcp=tcp)
        assert ans is not None and ans.answer[0][0].address == "192.0.2.1"
    assert responder.count("via-pydist0.example.") == 1


@pytest.mark.parametrize("impl", BOTH)
def test_bad_tls_options_are_config_errors(impl: str, tmp_path: Path) -> None:
    """As dnsdist 1.7.3, newServer builds the TLS context at once: an unknown cipher list or an
    unreadable caStore is a fatal Lua error even in --check-config; odd TLS 1.3 suites are not."""
    conf = tmp_path / "bad.conf"
    cases = {'ciphers="NOTACIPHER"': "Caught exception: Error setting the cipher list to "
                                     "'NOTACIPHER' for the TLS context",
             'caStore="/nonexistent/ca.pem"': "Caught exception: Error adding the trusted CAs "
                                              "file /nonexistent/ca.pem",
             'ciphersTLS13="NOTACIPHER"': None}
    for option, error in cases.items():
        conf.write_text('setSecurityPollSuffix("")\n'
                        f'newServer{{address="127.0.0.1:1", tls="openssl", {option}}}\n')
        res = run_cli(impl, ["--check-config", "-C", str(conf)])
        if error is None:
            assert res.returncode == 0 and "OK!" in res.stdout, (option, res.stdout)
        else:
            assert res.returncode == 1 and error in res.stdout, (option, res.stdout)
