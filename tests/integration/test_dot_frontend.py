"""addTLSLocal: DoT clients (kdig +tls, dnspython) get answers through the shared packet path,
RSA and ECDSA certificates, certificates reloaded at runtime, session resumption."""
from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.dot import CertSet, client_context, dot_query, make_cert_set, peer_certificate
from tests.helpers.pydist_proc import poll_until, query, run_cli

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("%s")
addTLSLocal("127.0.0.1:{portdot}", {certs}, {keys}{opts})
newServer{address="{backend}"}
pc = newPacketCache(1000)
getPool(""):setCache(pc)
""" % KEY


@pytest.fixture
def certs(tmp_path: Path) -> CertSet:
    return make_cert_set(tmp_path / "certs")


def _conf(certs_arg: str, keys_arg: str, opts: str = "") -> str:
    return CONF.replace("{certs}", certs_arg).replace("{keys}", keys_arg).replace("{opts}", opts)


def _start(start_proc: Starter, impl: str, certs: CertSet, backend: str, opts: str = ""):
    return start_proc(impl, _conf(f'"{certs.cert}"', f'"{certs.key}"', opts),
                      {"backend": backend})


def console(proc, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout + res.stderr


@pytest.mark.parametrize("impl", BOTH)
def test_dnspython_and_kdig_get_answers(impl: str, start_proc: Starter, responder, certs) -> None:
    proc = _start(start_proc, impl, certs, responder.address)
    assert proc.wait_for("Listening on 127.0.0.1:.* for TLS")
    dot = proc.addr("portdot")
    ans = dot_query(dot, "dnspython.example.", certs.ca_path)
    assert ans is not None and ans.answer[0][0].address == "192.0.2.1"
    kdig = shutil.which("kdig")
    assert kdig, "kdig (knot-dnsutils) is needed"
    out = subprocess.run([kdig, "+tls", f"+tls-ca={certs.ca_path}", "+tls-hostname=dot.test",
                          "@127.0.0.1", "-p", str(dot[1]), "kdig.example.", "A", "+short"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "192.0.2.1", out.stdout + out.stderr
    assert "TCP (DNS over TLS)" in console(proc, "showBinds()")


def test_dot_shares_the_tcp_cache_key(start_proc: Starter, responder, certs) -> None:
    """DoT queries are cached under the TCP key (facts §4.1): TCP then DoT is one miss."""
    proc = _start(start_proc, "pydist", certs, responder.address)
    assert query(proc.addr(), "shared.example.", tcp=True) is not None
    assert dot_query(proc.addr("portdot"), "shared.example.", certs.ca_path) is not None
    assert responder.count("shared.example.") == 1
    assert dot_query(proc.addr("portdot"), "other.example.", certs.ca_path) is not None
    assert query(proc.addr(), "other.example.", tcp=False) is not None
    assert responder.count("other.example.") == 2       # UDP has its own key


def test_rsa_and_ecdsa_pairs(start_proc: Starter, responder, certs: CertSet) -> None:
    """Two pairs on one listener: each client gets the certificate its ciphers can use."""
    ec = certs.issue("ecdsa", kind="ecdsa")
    proc = start_proc("pydist", _conf(f'{{"{certs.cert}", "{ec.cert_path}"}}',
                                      f'{{"{certs.key}", "{ec.key_path}"}}'),
                      {"backend": responder.address})
    seen = {}
    for alg in ("ECDSA", "RSA"):
        ctx = client_context(certs.ca_path)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(f"ECDHE-{alg}-AES128-GCM-SHA256")
        seen[alg] = peer_certificate(proc.addr("portdot"), ctx)
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec as ec_keys, rsa
    assert isinstance(x509.load_der_x509_certificate(seen["ECDSA"]).public_key(),
                      ec_keys.EllipticCurvePublicKey)
    assert isinstance(x509.load_der_x509_certificate(seen["RSA"]).public_key(), rsa.RSAPublicKey)


@pytest.mark.parametrize("impl", BOTH)
def test_certificates_reloaded_at_runtime(impl: str, start_proc: Starter, responder,
                                          certs: CertSet) -> None:
    """loadNewCertificatesAndKeys, then reloadAllCertificates after the files were renewed."""
    proc = _start(start_proc, impl, certs, responder.address)
    dot = proc.addr("portdot")
    ctx = client_context(certs.ca_path)
    first = peer_certificate(dot, ctx)
    new = certs.issue("new")
    out = console(proc, f'getTLSFrontend(0):loadNewCertificatesAndKeys("{new.cert_path}", '
                        f'"{new.key_path}")')
    assert "Error" not in out, out
    second = peer_certificate(dot, ctx)
    assert second != first
    renewed = certs.issue("new")             # a renewal rewrites the same files
    assert console(proc, "reloadAllCertificates()").strip() == ""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    assert peer_certificate(dot, ctx) == renewed.cert.public_bytes(serialization.Encoding.DER)
    assert dot_query(dot, "after-reload.example.", certs.ca_path) is not None
    bad = console(proc, 'getTLSFrontend(0):loadNewCertificatesAndKeys("/nonexistent.pem", '
                        '"/nonexistent.key")')
    assert ("Caught exception: An error occurred while trying to load the TLS server "
            "certificate file: /nonexistent.pem") in bad
    assert peer_certificate(dot, ctx) == renewed.cert.public_bytes(serialization.Encoding.DER)
    _ = x509


@pytest.mark.parametrize("impl", BOTH)
def test_session_resumption_and_ticket_rotation(impl: str, start_proc: Starter, responder,
                                                certs: CertSet) -> None:
    """A client resumes with its ticket; after rotateTicketsKey() the listener still serves."""
    proc = _start(start_proc, impl, certs, responder.address)
    dot = proc.addr("portdot")
    ctx = client_context(certs.ca_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2    # the session is ready after the handshake
    import socket
    with socket.create_connection(dot, timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="dot.test") as s:
            session = s.session
            assert not s.session_reused
    with socket.create_connection(dot, timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="dot.test", session=session) as s:
            assert s.session_reused
    assert console(proc, "getTLSFrontend(0):rotateTicketsKey()").strip() == ""
    assert dot_query(dot, "rotated.example.", certs.ca_path) is not None


def test_missing_certificate_is_fatal_when_serving_only(tmp_path: Path) -> None:
    """As dnsdist 1.7.3: --check-config says OK, serving exits 1 with the file named."""
    conf = tmp_path / "missing.conf"
    conf.write_text('setSecurityPollSuffix("")\naddTLSLocal("127.0.0.1:1", '
                    '"/nonexistent/cert.pem", "/nonexistent/key.pem")\n')
    for impl in ("pydist",) + (("dnsdist",) if shutil.which("dnsdist") else ()):
        res = run_cli(impl, ["--check-config", "-C", str(conf)])
        assert res.returncode == 0 and "OK!" in res.stdout, (impl, res.stdout)
        res = run_cli(impl, ["--supervised", "--disable-syslog", "-C", str(conf)])
        assert res.returncode == 1, impl
        assert ("Fatal error: An error occurred while trying to load the TLS server certificate "
                "file: /nonexistent/cert.pem") in res.stdout, (impl, res.stdout)


def test_mismatched_lists_and_bad_version(tmp_path: Path, certs: CertSet) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text(f'setSecurityPollSuffix("")\naddTLSLocal("127.0.0.1:1", '
                    f'{{"{certs.cert}"}}, {{"{certs.key}", "{certs.key}"}})\n')
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 0
    assert "Error, mismatching number of certificates and keys in call to addTLSLocal()!" \
        in res.stdout
    conf.write_text(f'setSecurityPollSuffix("")\naddTLSLocal("127.0.0.1:1", "{certs.cert}", '
                    f'"{certs.key}", {{minTLSVersion="tls9"}})\n')
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 1
    assert "Caught exception: Unknown TLS version 'tls9" in res.stdout
    _ = poll_until
