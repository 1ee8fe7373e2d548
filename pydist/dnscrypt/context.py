"""One DNSCrypt listener's provider and certificates (dnsdist's DNSCryptContext).

A context holds certificate pairs (certificate, resolver private key, active flag) in the
order they were loaded. As dnsdist 1.7.3:
  - the TXT answer for the provider name lists the pairs that are active AND valid now;
  - a query is taken for the first pair that is valid now and whose client magic it carries,
    active or not: marking a certificate inactive stops advertising it while clients that
    still hold it keep being served until it is removed or expires;
  - rotation is by hand (or from Lua's maintenance()): generateAndLoadInMemoryCertificate or
    loadNewCertificate for the next serial, then markInactive and removeInactiveCertificate
    for the old one. reloadCertificates() reads the configured files again (all active).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydist.dnscrypt import cert as C
from pydist.dnscrypt import crypto

CERT_TTL = 3600          # DNSCRYPT_CERTIFICATE_RESPONSE_TTL in 1.7.3 (observed)
SHARED_KEYS = 4096       # client keys whose shared key a pair remembers (then it starts over)


class DNSCryptError(Exception):
    """A context operation refused; the text is dnsdist's."""


@dataclass
class CertificatePair:
    cert: C.DNSCryptCert
    private_key: bytes
    public_key: bytes
    active: bool = True
    # X25519 costs ~70 us a query and clients keep their key for many queries (dnsdist computes
    # it each time): the box keys by client public key, bounded, gone with the pair
    shared: dict[bytes, bytes | None] = field(default_factory=dict, repr=False)

    def shared_key(self, client_public: bytes) -> bytes | None:
        key = self.shared.get(client_public, b"")
        if key == b"":
            if len(self.shared) >= SHARED_KEYS:
                self.shared.clear()
            key = self.shared[client_public] = crypto.shared_key(
                self.cert.version, client_public, self.private_key)
        return key


def load_pair(cert_file: str, key_file: str) -> CertificatePair:
    """:raises DNSCryptFileError: a file missing or too short (dnsdist's text)."""
    cert = C.load_cert(cert_file)
    key = C.load_resolver_key(key_file)
    return CertificatePair(cert, key, crypto.box_public(key))


class DNSCryptContext:
    """The provider name and its certificate pairs, shared by a listener's UDP and TCP sides."""

    def __init__(self, provider_name: str, provider_wire: bytes,
                 paths: list[tuple[str, str]]) -> None:
        self.provider_name = provider_name          # as configured, for showDNSCryptBinds
        self.provider_wire = provider_wire.lower()  # compared with query names
        self.paths = list(paths)
        self.pairs: list[CertificatePair] = []
        self.reload_certificates()

    # --- certificates
    def reload_certificates(self) -> None:
        """Every configured (and loadNewCertificate'd) file read again, all pairs active."""
        self.pairs = [load_pair(c, k) for c, k in self.paths]

    def add_pair(self, pair: CertificatePair) -> None:
        if any(p.cert.serial == pair.cert.serial for p in self.pairs):
            raise DNSCryptError("Error adding a new certificate: we already have a certificate "
                                "with the same serial")
        self.pairs.append(pair)

    def load_new_certificate(self, cert_file: str, key_file: str, active: bool = True) -> None:
        pair = load_pair(cert_file, key_file)
        pair.active = active
        self.add_pair(pair)
        self.paths.append((cert_file, key_file))

    def add_new_certificate(self, cert: C.DNSCryptCert, key: bytes, active: bool = True) -> None:
        self.add_pair(CertificatePair(cert, key, crypto.box_public(key), active))

    def _find(self, serial: int, active: bool) -> CertificatePair | None:
        return next((p for p in self.pairs if p.active == active and p.cert.serial == serial),
                    None)

    def mark_active(self, serial: int) -> None:
        pair = self._find(serial, False)
        if pair is None:
            raise DNSCryptError("No inactive certificate found with this serial")
        pair.active = True

    def mark_inactive(self, serial: int) -> None:
        pair = self._find(serial, True)
        if pair is None:
            raise DNSCryptError("No active certificate found with this serial")
        pair.active = False

    def remove_inactive_certificate(self, serial: int) -> None:
        pair = self._find(serial, False)
        if pair is None:
            raise DNSCryptError("No inactive certificate found with this serial")
        self.pairs.remove(pair)

    # --- the packet side
    def pair_for_magic(self, magic: bytes, now: float) -> CertificatePair | None:
        for pair in self.pairs:
            if pair.cert.is_valid(now) and pair.cert.client_magic == magic:
                return pair
        return None

    def certificate_answer(self, query: bytes, qname_end: int, now: float) -> bytes:
        """The TXT answer: the query's ID and question, QR set and nothing else in the header,
        one record per active and valid certificate (name compressed to the question, TTL 3600,
        one 124-byte character-string)."""
        records = [b"\xc0\x0c\x00\x10\x00\x01" + CERT_TTL.to_bytes(4, "big") + b"\x00\x7d\x7c"
                   + p.cert.raw for p in self.pairs if p.active and p.cert.is_valid(now)]
        header = query[:2] + b"\x80\x00\x00\x01" + len(records).to_bytes(2, "big") + bytes(4)
        return header + query[12:qname_end + 4] + b"".join(records)
