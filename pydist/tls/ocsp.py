"""generateOCSPResponse(): a "good" OCSP response for a certificate, signed by its issuer, as
dnsdist 1.7.3 builds one for testing stapling (libssl_generate_ocsp_response): certificate ID
hashed with SHA-256, responder named by the issuer's subject, no certificates included, signed
with SHA-256, valid from now for the given days and minutes; written as DER.

Where dnsdist goes wrong on bad input (a certificate that is not PEM gives a response for
serial 0, an issuer that is not PEM crashes it), pydist refuses with an error instead.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp


class OCSPError(Exception):
    """The response cannot be made: dnsdist's text (a Lua error)."""


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        raise OCSPError(f"Unable to open '{path}' when loading the {what} to generate an OCSP "
                        "response") from None


def _certificate(path: str, what: str) -> x509.Certificate:
    data = _read(path, what)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise OCSPError(f"Unable to load the {what} from '{path}' to generate an OCSP "
                        "response") from None


def generate_response(cert_path: str, ca_cert_path: str, ca_key_path: str, out_path: str,
                      days: int, minutes: int) -> None:
    """:raises OCSPError: with dnsdist's text where dnsdist has one."""
    cert = _certificate(cert_path, "certificate")
    issuer = _certificate(ca_cert_path, "issuer certificate")
    key_pem = _read(ca_key_path, "issuer key")
    try:
        key = serialization.load_pem_private_key(key_pem, None)
        if key.public_key() != issuer.public_key():
            raise ValueError("not the issuer's key")
    except (ValueError, TypeError):
        raise OCSPError("Error while signing the OCSP response") from None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (ocsp.OCSPResponseBuilder()
               .add_response(cert=cert, issuer=issuer, algorithm=hashes.SHA256(),
                             cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                             next_update=now + dt.timedelta(days=days, minutes=minutes),
                             revocation_time=None, revocation_reason=None)
               .responder_id(ocsp.OCSPResponderEncoding.NAME, issuer))
    try:
        der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    except (ValueError, TypeError):
        raise OCSPError("Error while signing the OCSP response") from None
    try:
        Path(out_path).write_bytes(der)
    except OSError:
        raise OCSPError("Error opening file for writing the OCSP response") from None
