"""dnsdist's console wire protocol, sans I/O: key, nonces, framing, secretbox.

Rules (as dnsdist 1.7.3, ``pdns/sodcrypto.cc`` and ``pdns/dnsdist-console.cc``):

1. Each side draws 24 random bytes ("ours"). The client sends its nonce first,
   the server answers with its own.
2. ``merge(lower, higher) = lower[:12] + higher[12:]``; each side reads with
   ``merge(ours, theirs)`` and writes with ``merge(theirs, ours)``.
3. Every message in either direction is a 4-byte big-endian length and that many
   bytes of ``crypto_secretbox_easy`` output (MAC first, no nonce on the wire).
   A zero length carries nothing and is answered by a zero length.
4. After every encrypt or decrypt, that direction's nonce is incremented: bytes
   0..3 are a big-endian counter (+1 mod 2**32), bytes 4..23 never change.
"""

from __future__ import annotations

import base64
import os
import struct

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # libsodium loads on the first message, not at start-up
    import nacl.secret

KEY_SIZE = 32    # crypto_secretbox_KEYBYTES
NONCE_SIZE = 24  # crypto_secretbox_NONCEBYTES
MAC_SIZE = 16    # crypto_secretbox_MACBYTES
LENGTH_SIZE = 4
DEFAULT_CONSOLE_PORT = 5199
DEFAULT_MAX_MSG_SIZE = 10_000_000

DECRYPT_ERROR = (
    "Could not decrypt message, please check that the key configured with setKey() is correct"
)

_LENGTH = struct.Struct("!I")


class KeyDecodeError(ValueError):
    """A setKey() argument that dnsdist's base64 decoder rejects (message is dnsdist's)."""


class ConsoleCryptoError(Exception):
    """Encryption or decryption failed; the message is what dnsdist logs."""


def _b64_value(byte: int) -> int:
    """pdns' B64Decode1 on a (signed) char: letters, digits, + / =, and its odd extras.

    Its range tricks also accept some punctuation (``!``, ``#``, ``[`` ...): that
    is the leniency users see in dnsdist. Returns 0x80 or more for a rejected byte.
    """
    if byte == 0x2B:  # '+'
        return 62
    if byte == 0x2F:  # '/'
        return 63
    if byte == 0x3D:  # '='
        return 0
    c = byte - 256 if byte > 127 else byte
    if (0x39 - c) & 0xFF <= 0x3F:
        return (c - 0x30 + 52) & 0xFF
    if (0x5A - c) & 0xFF <= 0x3F:
        return (c - 0x41) & 0xFF
    if (0x7A - c) & 0xFF <= 0x3F:
        return (c - 0x61 + 26) & 0xFF
    return 0x80


def b64decode_lenient(text: str | bytes) -> bytes:
    """Decode base64 exactly as pdns' B64Decode (used by setKey) does.

    Groups of four characters, a missing tail counts as zeros, whitespace before
    a character is skipped, and the ``=`` count of the last group trims the output.

    :raises ValueError: on a rejected character.
    :raises IndexError: with the C++ text when trailing whitespace runs past the end.
    """
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
    size = len(data)
    out = bytearray()
    pos = 0
    pad = 0
    while pos < size:
        value = 0
        pad = 0
        for _ in range(4):
            bits = 0
            if pos < size:
                if data[pos] == 0x3D:
                    pad += 1
                while data[pos] in b" \t\n\r\v\f":
                    pos += 1
                    if pos >= size:
                        raise IndexError(
                            f"basic_string::at: __n (which is {pos}) >= this->size() (which is {size})"
                        )
                bits = _b64_value(data[pos])
                pos += 1
            if bits > 0x7F:
                raise ValueError("invalid base64 character")
            value = (value << 6) | bits
        out += (value & 0xFFFFFF).to_bytes(3, "big")
    if pad:
        if pad > len(out):
            raise IndexError("basic_string::_M_replace_aux")
        del out[len(out) - pad :]
    return bytes(out)


def decode_key(text: str) -> bytes:
    """Decode a setKey() argument; the result may be any length (see ``is_valid_key``).

    :raises KeyDecodeError: with dnsdist's text ``Unable to decode <key> as Base64``.
    :raises IndexError: the C++ exception dnsdist turns into ``Caught exception: ...``.
    """
    try:
        return b64decode_lenient(text)
    except ValueError:
        raise KeyDecodeError(f"Unable to decode {text} as Base64") from None


def is_valid_key(key: bytes | None) -> bool:
    """A console key is usable only when it is exactly 32 bytes (sodIsValidKey)."""
    return key is not None and len(key) == KEY_SIZE


def generate_key() -> bytes:
    """32 fresh random bytes, as makeKey()."""
    return os.urandom(KEY_SIZE)


def make_key_line(key: bytes | None = None) -> str:
    """The ``setKey("<44 chars>")`` line makeKey() prints (without its newline)."""
    if key is None:
        key = generate_key()
    return 'setKey("' + base64.b64encode(key).decode("ascii") + '")'


def new_nonce() -> bytes:
    """24 random bytes, one side's contribution to the session nonces."""
    return os.urandom(NONCE_SIZE)


def merge_nonces(lower: bytes, higher: bytes) -> bytes:
    """dnsdist's SodiumNonce::merge: first half of ``lower``, second half of ``higher``."""
    half = NONCE_SIZE // 2
    return bytes(lower[:half]) + bytes(higher[half:NONCE_SIZE])


def increment_nonce(nonce: bytes) -> bytes:
    """Bump the big-endian uint32 in bytes 0..3 (wrapping, no carry into byte 4)."""
    counter = (int.from_bytes(nonce[:4], "big") + 1) & 0xFFFFFFFF
    return counter.to_bytes(4, "big") + bytes(nonce[4:])


def encode_length(length: int) -> bytes:
    """The 4-byte big-endian length prefix of every console message."""
    return _LENGTH.pack(length)


def decode_length(prefix: bytes) -> int:
    """Read a 4-byte big-endian length prefix."""
    return _LENGTH.unpack(prefix[:LENGTH_SIZE])[0]


def frame(ciphertext: bytes) -> bytes:
    """Length prefix plus body, ready for the socket."""
    return encode_length(len(ciphertext)) + ciphertext


def _box(key: bytes, direction: str) -> nacl.secret.SecretBox:
    if not is_valid_key(key):
        raise ConsoleCryptoError(
            f"Invalid {direction} key of size {len(key)}, use setKey() to set a valid key"
        )
    import nacl.secret
    return nacl.secret.SecretBox(key)


def encrypt(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    """crypto_secretbox_easy: MAC + ciphertext, without the nonce PyNaCl prepends.

    :raises ConsoleCryptoError: when the key is not 32 bytes.
    """
    return _box(key, "encryption").encrypt(plaintext, nonce).ciphertext


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """crypto_secretbox_open_easy on MAC + ciphertext.

    :raises ConsoleCryptoError: with dnsdist's message (short body, bad key, bad MAC).
    """
    if len(ciphertext) < MAC_SIZE:
        raise ConsoleCryptoError(f"Could not decrypt message of size {len(ciphertext)}")
    box = _box(key, "decryption")
    import nacl.exceptions
    try:
        return box.decrypt(ciphertext, nonce)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise ConsoleCryptoError(DECRYPT_ERROR) from None


class ConsoleSession:
    """The two directional nonces of one console connection, advanced on every message."""

    __slots__ = ("reading_nonce", "writing_nonce")

    def __init__(self, ours: bytes, theirs: bytes) -> None:
        if len(ours) != NONCE_SIZE or len(theirs) != NONCE_SIZE:
            raise ValueError("console nonces are 24 bytes")
        self.reading_nonce = merge_nonces(ours, theirs)
        self.writing_nonce = merge_nonces(theirs, ours)

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        """Encrypt with the writing nonce, then advance it."""
        ciphertext = encrypt(key, self.writing_nonce, plaintext)
        self.writing_nonce = increment_nonce(self.writing_nonce)
        return ciphertext

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        """Decrypt with the reading nonce, then advance it (only on success, as dnsdist)."""
        plaintext = decrypt(key, self.reading_nonce, ciphertext)
        self.reading_nonce = increment_nonce(self.reading_nonce)
        return plaintext
