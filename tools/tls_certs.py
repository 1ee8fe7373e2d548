"""Test certificates for DNS over TLS: a self-signed CA, server certificates and keys.

    python3 -m tools.tls_certs OUTDIR [--name dot.test] [--ip 127.0.0.1] [--ecdsa]

writes OUTDIR/ca.pem, OUTDIR/ca.key, OUTDIR/server.pem, OUTDIR/server.key. Built with the
`cryptography` x509 builder that pyOpenSSL itself sits on (pyOpenSSL's own X509 builders are
deprecated). The tests also make expired, wrong-name and self-signed certificates with it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class Issued:
    """A certificate and its key, both in PEM, and where they were written (if they were)."""
    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path | None = None
    key_path: Path | None = None

    def write(self, cert_path: Path, key_path: Path) -> Issued:
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        key_path.chmod(0o600)
        self.cert_path, self.key_path = cert_path, key_path
        return self


def new_key(kind: str = "rsa") -> PrivateKey:
    """RSA 2048 or ECDSA P-256: the two key types dnsdist frontends are fed in practice."""
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "pydist test CA", kind: str = "rsa") -> Issued:
    """A self-signed CA valid from yesterday for ten years."""
    key = new_key(kind)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def make_server(ca: Issued | None, names: Sequence[str] = ("dot.test",),
                ips: Sequence[str] = ("127.0.0.1", "::1"), kind: str = "rsa",
                days: int = 365, expired: bool = False) -> Issued:
    """A server certificate for names and ips, signed by ca (self-signed when ca is None)."""
    key = new_key(kind)
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=days)
    if expired:
        start, end = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    cn = names[0] if names else (ips[0] if ips else "localhost")
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    issuer = ca.cert.subject if ca else _name(cn)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca.key if ca else key, hashes.SHA256()))
    return Issued(cert, key)


def make_ocsp_response(ca: Issued, server: Issued, hours: int = 24) -> bytes:
    """A DER 'good' OCSP response for server signed by ca, for ocspResponses={...} tests
    (OpenSSL only staples what parses as an OCSP response)."""
    now = dt.datetime.now(dt.UTC)
    builder = (ocsp.OCSPResponseBuilder()
               .add_response(cert=server.cert, issuer=ca.cert, algorithm=hashes.SHA1(),
                             cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                             next_update=now + dt.timedelta(hours=hours), revocation_time=None,
                             revocation_reason=None)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert))
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def write_set(out: Path, names: Sequence[str] = ("dot.test",),
              ips: Sequence[str] = ("127.0.0.1", "::1"),
              kind: str = "rsa") -> tuple[Issued, Issued]:
    """ca.pem/ca.key and server.pem/server.key in out; returns (ca, server)."""
    out.mkdir(parents=True, exist_ok=True)
    ca = make_ca().write(out / "ca.pem", out / "ca.key")
    server = make_server(ca, names, ips, kind).write(out / "server.pem", out / "server.key")
    return ca, server


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tls_certs", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--name", action="append", help="DNS name in the certificate (repeatable)")
    p.add_argument("--ip", action="append", help="IP address in the certificate (repeatable)")
    p.add_argument("--ecdsa", action="store_true", help="ECDSA P-256 key instead of RSA 2048")
    a = p.parse_args(argv)
    write_set(a.out, a.name or ["dot.test"], a.ip or ["127.0.0.1", "::1"],
              "ecdsa" if a.ecdsa else "rsa")
    for f in ("ca.pem", "server.pem", "server.key"):
        print(a.out / f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
