"""A DNSCrypt v2 client for the tests (dnspython for the DNS part).

It fetches the provider's certificates (a plain TXT query for the provider name), checks their
Ed25519 signature with the provider public key, encrypts queries for one certificate and
opens the answers, over UDP or TCP. It is checked against real dnsdist 1.7.3 in the
differential tests, so what works against both implementations is the protocol, not a shared
misreading. The box primitives come from pydist.dnscrypt.crypto (libsodium's own boxes).
"""
from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

import dns.message
import dns.rdatatype

from pydist.dnscrypt import crypto
from pydist.dnscrypt.cert import DNSCryptCert

RESOLVER_MAGIC = b"r6fnvWj8"
HEADER = 52                 # client magic (8) + client public key (32) + client nonce (12)
MIN_UDP_QUERY = 256


@dataclass
class Reply:
    """An opened DNSCrypt answer: the DNS message, its wire, and what framed it."""
    message: dns.message.Message
    wire: bytes
    size: int               # the encrypted answer's length on the wire
    padding: int            # bytes of padding after the DNS answer (0x80 included)
    nonce: bytes


def pad(data: bytes, tcp: bool, pad_to: int | None = None) -> bytes:
    """ISO/IEC 7816-4 padding as dnsdist's own encryptQuery does it: to the next multiple of
    64, and for UDP to a whole query of at least 256 bytes (or `pad_to` bytes of padded data)."""
    size = len(data) + 64 - len(data) % 64
    if not tcp and size + HEADER + crypto.MAC_SIZE < MIN_UDP_QUERY:
        size = MIN_UDP_QUERY - HEADER - crypto.MAC_SIZE
    if pad_to is not None:
        size = pad_to
    return data + b"\x80" + bytes(size - len(data) - 1)


def unpad(data: bytes) -> tuple[bytes, int] | None:
    end = len(data.rstrip(b"\x00"))
    if end == 0 or data[end - 1] != 0x80:
        return None
    return data[:end - 1], len(data) - end + 1


class DNSCryptClient:
    """One client key pair talking to one DNSCrypt listener."""

    def __init__(self, where: tuple[str, int], provider_name: str, provider_public: bytes,
                 timeout: float = 2.0) -> None:
        self.where = where
        self.provider_name = provider_name
        self.provider_public = provider_public
        self.timeout = timeout
        self.public, self.secret = crypto.box_keypair()

    # --- certificates
    def cert_answer(self, tcp: bool = False, qname: str | None = None) -> dns.message.Message:
        """The plain TXT answer for the provider name (no verification)."""
        q = dns.message.make_query(qname or self.provider_name, "TXT", use_edns=False)
        raw = self.exchange(q.to_wire(), tcp)
        assert raw is not None, "no certificate answer"
        return dns.message.from_wire(raw)

    def fetch_certs(self, tcp: bool = False) -> list[DNSCryptCert]:
        """The certificates in the TXT answer; each must be 124 bytes and signed by the provider."""
        certs = []
        for rrset in self.cert_answer(tcp).answer:
            assert rrset.rdtype == dns.rdatatype.TXT
            for rd in rrset:
                blob = b"".join(rd.strings)
                cert = DNSCryptCert(blob)
                assert len(blob) == 124 and cert.signed_by(self.provider_public), blob.hex()
                certs.append(cert)
        return certs

    # --- one query
    def encrypt(self, wire: bytes, cert: DNSCryptCert, tcp: bool = False,
                nonce: bytes | None = None, pad_to: int | None = None,
                magic: bytes | None = None) -> tuple[bytes, bytes]:
        """(the DNSCrypt query, the 12-byte client nonce it uses)."""
        nonce = nonce or os.urandom(12)
        key = crypto.shared_key(cert.version, cert.resolver_public_key, self.secret)
        assert key is not None
        box = crypto.seal(cert.version, key, nonce + bytes(12), pad(wire, tcp, pad_to))
        return (magic or cert.client_magic) + self.public + nonce + box, nonce

    def decrypt(self, packet: bytes, cert: DNSCryptCert, nonce: bytes) -> Reply:
        assert packet[:8] == RESOLVER_MAGIC, packet[:8]
        full_nonce = packet[8:32]
        assert full_nonce[:12] == nonce
        key = crypto.shared_key(cert.version, cert.resolver_public_key, self.secret)
        plain = crypto.open_box(cert.version, key, full_nonce, packet[32:])
        assert plain is not None, "the answer does not authenticate"
        unpadded = unpad(plain)
        assert unpadded is not None, "bad padding in the answer"
        wire, padding = unpadded
        return Reply(dns.message.from_wire(wire), wire, len(packet), padding, full_nonce)

    def query(self, msg: dns.message.Message, cert: DNSCryptCert, tcp: bool = False,
              pad_to: int | None = None) -> Reply | None:
        packet, nonce = self.encrypt(msg.to_wire(), cert, tcp, pad_to=pad_to)
        raw = self.exchange(packet, tcp)
        return None if raw is None else self.decrypt(raw, cert, nonce)

    # --- transport
    def exchange(self, packet: bytes, tcp: bool = False) -> bytes | None:
        """Send one packet, return the one that comes back (None: silence or a closed TCP)."""
        fam = socket.AF_INET6 if ":" in self.where[0] else socket.AF_INET
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        with socket.socket(fam, kind) as s:
            s.settimeout(self.timeout)
            try:
                s.connect(self.where)
                if not tcp:
                    s.send(packet)
                    return s.recv(65535)
                s.sendall(struct.pack("!H", len(packet)) + packet)
                head = recv_exact(s, 2)
                return None if head is None else recv_exact(s, struct.unpack("!H", head)[0])
            except (TimeoutError, ConnectionError, OSError):
                return None


def recv_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
