"""DNSCrypt certificates and key files, byte for byte as dnsdist 1.7.3 writes and reads them.

Files (raw bytes, no framing):
  provider public key   32 bytes (Ed25519)      generateDNSCryptProviderKeys
  provider private key  64 bytes (Ed25519)
  resolver private key  32 bytes (X25519)       generateDNSCryptCertificate
  certificate          124 bytes:
      "DNSC" | es-version (2) | protocol minor version 0x0000 | Ed25519 signature (64) |
      signed part: resolver public key (32) | client magic (8) | serial | ts-start | ts-end
      (three big-endian 32-bit integers). The client magic is the first 8 bytes of the
      resolver public key.
dnsdist reads a file's first N bytes and refuses it only when it is shorter.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from pydist.dnscrypt import crypto

CERT_SIZE = 124
CERT_MAGIC = b"DNSC"
SIGNED_OFFSET = 72
PROVIDER_PUBLIC_SIZE, PROVIDER_PRIVATE_SIZE, RESOLVER_PRIVATE_SIZE = 32, 64, 32


class DNSCryptFileError(Exception):
    """A key or certificate file missing or too short; the text is dnsdist's."""


@dataclass(frozen=True)
class DNSCryptCert:
    """One certificate as it sits in its file and in the TXT answer."""
    raw: bytes

    @property
    def magic(self) -> bytes:
        return self.raw[0:4]

    @property
    def es_version_bytes(self) -> bytes:
        return self.raw[4:6]

    @property
    def version(self) -> int:
        """1 or 2; anything else is an es-version dnsdist does not know (0)."""
        v = self.raw[4:6]
        return v[1] if v[0] == 0 and v[1] in (1, 2) else 0

    @property
    def protocol_minor_version(self) -> bytes:
        return self.raw[6:8]

    @property
    def signature(self) -> bytes:
        return self.raw[8:72]

    @property
    def signed_data(self) -> bytes:
        return self.raw[SIGNED_OFFSET:]

    @property
    def resolver_public_key(self) -> bytes:
        return self.raw[72:104]

    @property
    def client_magic(self) -> bytes:
        return self.raw[104:112]

    @property
    def serial(self) -> int:
        return struct.unpack_from("!I", self.raw, 112)[0]

    @property
    def ts_start(self) -> int:
        return struct.unpack_from("!I", self.raw, 116)[0]

    @property
    def ts_end(self) -> int:
        return struct.unpack_from("!I", self.raw, 120)[0]

    def is_valid(self, now: float) -> bool:
        """Inside [ts-start, ts-end], as dnsdist's isValid()."""
        return self.ts_start <= now <= self.ts_end

    def signed_by(self, provider_public: bytes) -> bool:
        return crypto.verify(self.signature, self.signed_data, provider_public)


def make_cert(provider_private: bytes, resolver_public: bytes, serial: int, begin: int, end: int,
              version: int) -> DNSCryptCert:
    """A certificate for resolver_public, signed by the provider's Ed25519 key."""
    signed = resolver_public + resolver_public[:8] + struct.pack(
        "!III", serial & 0xFFFFFFFF, begin & 0xFFFFFFFF, end & 0xFFFFFFFF)
    head = CERT_MAGIC + bytes((0, version)) + b"\x00\x00"
    return DNSCryptCert(head + crypto.sign(signed, provider_private) + signed)


def generate_certificate(provider_private: bytes, serial: int, begin: int, end: int,
                         version: int) -> tuple[DNSCryptCert, bytes]:
    """(certificate, resolver private key): a fresh X25519 pair, certified."""
    public, secret = crypto.box_keypair()
    return make_cert(provider_private, public, serial, begin, end, version), secret


def read_file(path: str, size: int, what: str) -> bytes:
    """The first `size` bytes of a key or certificate file (dnsdist ignores any more)."""
    try:
        with open(path, "rb") as f:
            data = f.read(size)
    except OSError:
        data = b""
    if len(data) < size:
        raise DNSCryptFileError(f"{what} {path}")
    return data


def load_cert(path: str) -> DNSCryptCert:
    return DNSCryptCert(read_file(path, CERT_SIZE, "Invalid dnscrypt certificate file"))


def load_resolver_key(path: str) -> bytes:
    return read_file(path, RESOLVER_PRIVATE_SIZE, "Invalid DNSCrypt key file")


def load_provider_private(path: str) -> bytes:
    return read_file(path, PROVIDER_PRIVATE_SIZE, "Invalid DNSCrypt provider key file")


def load_provider_public(path: str) -> bytes:
    return read_file(path, PROVIDER_PUBLIC_SIZE, "Invalid dnscrypt provider public key file")


def write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def fingerprint(public: bytes) -> str:
    """The provider fingerprint: groups of two bytes in upper-case hex joined by ':'."""
    return ":".join(public[i:i + 2].hex().upper() for i in range(0, len(public), 2))


def date_text(ts: int) -> str:
    """dnsdist's certificateDateToStr: local time, %Y-%m-%d %H:%M:%S."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
