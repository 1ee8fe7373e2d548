"""The DNSCrypt primitives, on the libsodium that PyNaCl carries (the library dnsdist uses too).

Two exchange versions (es-version in the certificate), one box each:
  1: X25519-XSalsa20Poly1305 -- libsodium's crypto_box, through PyNaCl's public bindings;
  2: X25519-XChaCha20Poly1305 -- libsodium's crypto_box_curve25519xchacha20poly1305, which
     PyNaCl does not bind. It is built here from the pieces PyNaCl's library exports (HChaCha20,
     the ChaCha20 stream, Poly1305), the way libsodium builds it: shared key =
     HChaCha20(X25519(sk, pk), 0^16); box = Poly1305 tag || ChaCha20 stream (key HChaCha20(k,
     nonce[:16]), nonce nonce[16:]) whose first 32 bytes key the tag.
Plus the XSalsa20 stream (crypto_stream) dnsdist draws its response padding length from, so
pydist pads exactly as dnsdist does for the same key and client nonce.

Boxes are "easy" boxes: the 16-byte tag first, then the ciphertext. Opening a box that does
not authenticate returns None; nothing here raises on bad input.
"""
from __future__ import annotations

import ctypes
import ctypes.util

import nacl._sodium
import nacl.bindings as nb
import nacl.exceptions

VERSION1, VERSION2 = 1, 2        # es-version 0x0001 and 0x0002 (dnsdist's VERSION1, VERSION2)
MAC_SIZE = 16
NONCE_SIZE = 24
KEY_SIZE = 32
_ZERO16 = bytes(16)
_ZERO32 = bytes(32)


def _load_sodium() -> ctypes.CDLL:
    """PyNaCl's extension exports libsodium's C API (bundled or linked to the system's)."""
    lib = ctypes.CDLL(nacl._sodium.__file__)
    try:
        lib.crypto_core_hchacha20
    except AttributeError:      # a PyNaCl whose extension hides them: the system library
        name = ctypes.util.find_library("sodium")
        if name is None:
            raise ImportError("libsodium's crypto_core_hchacha20 is not reachable") from None
        lib = ctypes.CDLL(name)
    c, u64 = ctypes.c_char_p, ctypes.c_ulonglong
    for fn, args in (("crypto_core_hchacha20", (c, c, c, c)),
                     ("crypto_stream_chacha20_xor", (c, c, u64, c, c)),
                     ("crypto_onetimeauth_poly1305", (c, c, u64, c)),
                     ("crypto_onetimeauth_poly1305_verify", (c, c, u64, c)),
                     ("crypto_stream_xsalsa20", (c, u64, c, c))):
        f = getattr(lib, fn)
        f.argtypes, f.restype = args, ctypes.c_int
    return lib


_lib = _load_sodium()


def _hchacha20(key: bytes, inp: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    _lib.crypto_core_hchacha20(out, inp, key, None)
    return out.raw


def shared_key(version: int, public: bytes, secret: bytes) -> bytes | None:
    """The box key of (their public key, our secret key); None for a low-order public key or
    an exchange version dnsdist does not know (a crafted certificate file)."""
    try:
        if version == VERSION1:
            return nb.crypto_box_beforenm(public, secret)
        if version != VERSION2:
            return None
        return _hchacha20(nb.crypto_scalarmult(secret, public), _ZERO16)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return None


def _chacha_stream(data: bytes, nonce: bytes, key: bytes) -> ctypes.Array:
    """32 bytes of Poly1305 key, then data xored with the stream (libsodium's block 0 split)."""
    buf = ctypes.create_string_buffer(_ZERO32 + data, 32 + len(data))
    _lib.crypto_stream_chacha20_xor(buf, buf, 32 + len(data), nonce[16:], _hchacha20(key, nonce[:16]))
    return buf


def seal(version: int, key: bytes, nonce: bytes, message: bytes) -> bytes:
    """tag || ciphertext of message under the shared key and the 24-byte nonce."""
    if version == VERSION1:
        return nb.crypto_box_easy_afternm(message, nonce, key)
    buf = _chacha_stream(message, nonce, key)
    body = buf.raw[32:]
    tag = ctypes.create_string_buffer(MAC_SIZE)
    _lib.crypto_onetimeauth_poly1305(tag, body, len(body), buf.raw[:32])
    return tag.raw + body


def open_box(version: int, key: bytes, nonce: bytes, box: bytes) -> bytes | None:
    """The message inside tag || ciphertext, or None when it does not authenticate."""
    if len(box) < MAC_SIZE:
        return None
    if version == VERSION1:
        try:
            return nb.crypto_box_open_easy_afternm(box, nonce, key)
        except nacl.exceptions.CryptoError:
            return None
    body = box[MAC_SIZE:]
    buf = _chacha_stream(body, nonce, key)
    if _lib.crypto_onetimeauth_poly1305_verify(box[:MAC_SIZE], body, len(body), buf.raw[:32]):
        return None
    return buf.raw[32:]


def xsalsa20_stream(size: int, nonce: bytes, key: bytes) -> bytes:
    """libsodium's crypto_stream (XSalsa20): dnsdist's source of the response padding length."""
    out = ctypes.create_string_buffer(size)
    _lib.crypto_stream_xsalsa20(out, size, nonce, key)
    return out.raw


# --- keys
def box_keypair() -> tuple[bytes, bytes]:
    """(public, secret) X25519 keys: a resolver's (certificate) or a client's."""
    return nb.crypto_box_keypair()


def box_public(secret: bytes) -> bytes:
    return nb.crypto_scalarmult_base(secret)


def sign_keypair() -> tuple[bytes, bytes]:
    """(32-byte public, 64-byte secret) Ed25519 keys: the provider's."""
    return nb.crypto_sign_keypair()


def sign(message: bytes, secret: bytes) -> bytes:
    """The 64-byte Ed25519 signature of message."""
    return nb.crypto_sign(message, secret)[:64]


def verify(signature: bytes, message: bytes, public: bytes) -> bool:
    try:
        nb.crypto_sign_open(signature + message, public)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
