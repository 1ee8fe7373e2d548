"""The DNSCrypt v2 exchange on bytes, sans I/O, as dnsdist 1.7.3 carries it out.

What a DNSCrypt listener reads is one of:
  - an encrypted query: client magic (8) | client public key (32) | client nonce (12) |
    box(query | 0x80 | 0x00*), taken when at least 52 bytes long (256 over UDP) and its magic
    is that of a certificate valid now. The box is opened with the nonce = client nonce
    followed by 12 zero bytes; the padding must end in 0x80 then zeros, and over TCP be at
    most 256 bytes long;
  - a certificate request: a plain query (QR=0, opcode QUERY, one question, no answer or
    authority record) for TXT/IN of the provider name (any case);
  - anything else, dropped (counted only as a query).
An answer to an encrypted query is resolver magic "r6fnvWj8" | client nonce | 12 random bytes
| box(answer | 0x80 | 0x00*). Its padding length is drawn from the XSalsa20 stream keyed by the
resolver private key over the client nonce twice: the same for the same query, as the spec
asks, and the same as dnsdist's. Over UDP an answer longer than the query's padded length is
cut to its header and question, with TC set and the record counts zeroed.
"""
from __future__ import annotations

import os

from pydist.dns.wire import WireError, parse_question
from pydist.dnscrypt import crypto
from pydist.dnscrypt.context import CertificatePair, DNSCryptContext

QUERY_HEADER = 52
MIN_UDP_QUERY = 256
MAX_TCP_PADDING = 256
MAX_RESPONSE_PADDING = 256
PADDED_BLOCK = 64
RESOLVER_MAGIC = b"r6fnvWj8"
RESPONSE_HEADER = len(RESOLVER_MAGIC) + crypto.NONCE_SIZE
MAX_UDP_RESPONSE, MAX_TCP_RESPONSE = 4096, 65535     # dnsdist's DNSQuestion::getMaximumSize()
_ZERO12 = bytes(12)


class DNSCryptQuery:
    """What answering one encrypted query needs: the key pair it used and its nonce."""

    __slots__ = ("client_nonce", "key", "pair", "padded_len")

    def __init__(self, pair: CertificatePair, key: bytes, client_nonce: bytes,
                 padded_len: int) -> None:
        self.pair, self.key, self.client_nonce, self.padded_len = pair, key, client_nonce, \
            padded_len

    def padding_size(self, unpadded: int, most: int) -> int:
        """dnsdist's computePaddingSize: a length in [unpadded, most] from the stream, rounded
        up to a multiple of 64 and capped at most; returns the padding's own length."""
        rnd = int.from_bytes(crypto.xsalsa20_stream(4, self.client_nonce * 2,
                                                    self.pair.private_key), "little")
        size = unpadded + rnd % (most - unpadded + 1)
        size += PADDED_BLOCK - size % PADDED_BLOCK
        return min(size, most) - unpadded

    def encrypt_response(self, response: bytes, tcp: bool) -> bytes | None:
        """The encrypted answer; None when it cannot be sent (dnsdist drops it)."""
        if not tcp and self.padded_len < len(response):
            response = truncated(response, self.padded_len)
            if response is None:
                return None
        limit = MAX_TCP_RESPONSE if tcp else MAX_UDP_RESPONSE
        required = RESPONSE_HEADER + crypto.MAC_SIZE + len(response)
        if required >= limit:         # no room for the padding's 0x80: dnsdist drops it
            return None
        padding = self.padding_size(required, min(limit, required + MAX_RESPONSE_PADDING))
        nonce = self.client_nonce + os.urandom(12)
        body = bytes(response) + b"\x80" + bytes(padding - 1)     # a cached answer: bytearray
        return RESOLVER_MAGIC + nonce + crypto.seal(self.pair.cert.version, self.key, nonce, body)


def truncated(response: bytes, padded_len: int) -> bytes | None:
    """Header and question only, TC=1, AN/NS/AR=0, and no longer than the padded query."""
    question = 0
    if len(response) > 12:
        try:
            question = parse_question(response)[0] + 4 - 12
        except WireError:
            return None
    out = bytearray(response[:12 + question][:padded_len])
    if len(out) >= 12:
        out[2] |= 0x02
        out[6:12] = bytes(6)
    return bytes(out)


def read_packet(ctx: DNSCryptContext, packet: bytes, tcp: bool,
                now: float) -> tuple[bytes, DNSCryptQuery | None] | None:
    """(the decrypted query, its state) for an encrypted query; (the certificate answer, None)
    for a certificate request; None for anything else (dropped).

    The decrypted query may be shorter than a DNS header: the caller counts it
    non-compliant, as dnsdist does.
    """
    if len(packet) >= QUERY_HEADER and (tcp or len(packet) >= MIN_UDP_QUERY):
        pair = ctx.pair_for_magic(packet[:8], now)
        if pair is not None:
            return _decrypt(pair, packet, tcp)
    answer = _certificate_request(ctx, packet, now)
    return None if answer is None else (answer, None)


def _decrypt(pair: CertificatePair, packet: bytes, tcp: bool) -> tuple[bytes, DNSCryptQuery] | None:
    version = pair.cert.version
    key = pair.shared_key(packet[8:40])
    if key is None:
        return None
    client_nonce = packet[40:52]
    plain = crypto.open_box(version, key, client_nonce + _ZERO12, packet[QUERY_HEADER:])
    if plain is None:
        return None
    end = len(plain.rstrip(b"\x00"))
    if end == 0 or plain[end - 1] != 0x80:
        return None
    if tcp and len(plain) - end + 1 > MAX_TCP_PADDING:
        return None
    return plain[:end - 1], DNSCryptQuery(pair, key, client_nonce, len(plain))


def _certificate_request(ctx: DNSCryptContext, packet: bytes, now: float) -> bytes | None:
    if len(packet) < 12 or packet[2] & 0xF8 or packet[4:10] != b"\x00\x01\x00\x00\x00\x00":
        return None
    try:
        qname_end, qtype, qclass = parse_question(packet)
    except WireError:
        return None
    if qtype != 16 or qclass != 1 or packet[12:qname_end].lower() != ctx.provider_wire:
        return None
    return ctx.certificate_answer(packet, qname_end, now)
