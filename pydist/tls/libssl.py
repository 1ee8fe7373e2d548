"""The few OpenSSL calls a DoT frontend needs that Python's `ssl` module lacks.

Python's `_ssl` links the system libssl, the library dnsdist itself uses; ctypes reaches the
same loaded copy, so these calls act on the `SSL_CTX` behind an `ssl.SSLContext`. What is set
here: TLS 1.3 suites, the session timeout and cache size, the session-ticket key callback
(dnsdist's key ring: keys from a file, rotation) and the OCSP stapling callback.

pyOpenSSL cannot serve here: its OpenSSL is linked into cryptography's Rust module, and neither
that module nor pyOpenSSL's cffi `lib` exposes `SSL_CTX_ctrl` or a ticket-key callback.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import ssl
import sys
from collections.abc import Callable

from pydist.tls.names import TLSConfigError

_P = ctypes.c_void_p
_UBYTES = ctypes.POINTER(ctypes.c_ubyte)

# from openssl/ssl.h and openssl/tls1.h (stable across OpenSSL 1.1 and 3.x)
SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB = 63
SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP = 71
SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB = 72
SSL_CTRL_SET_SESS_CACHE_SIZE = 42
SSL_CTRL_SET_SESS_CACHE_MODE = 44
SSL_CTRL_SET_MIN_PROTO_VERSION = 123
SSL_TLSEXT_ERR_OK, SSL_TLSEXT_ERR_NOACK = 0, 3
EVP_MAX_IV_LENGTH = 16

# int cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
#        HMAC_CTX *hctx, int enc)
TICKET_CB = ctypes.CFUNCTYPE(ctypes.c_int, _P, _UBYTES, _UBYTES, _P, _P, ctypes.c_int)
STATUS_CB = ctypes.CFUNCTYPE(ctypes.c_int, _P, _P)      # int cb(SSL *s, void *arg)


class LibSSLError(TLSConfigError):
    """The system libssl could not be reached or did not take a setting (fatal at startup)."""


def _load(name: str) -> ctypes.CDLL:
    found = ctypes.util.find_library(name)
    for candidate in (f"lib{name}.so.3", found, f"lib{name}.so.1.1"):
        if candidate:
            try:
                return ctypes.CDLL(candidate)
            except OSError:
                continue
    raise LibSSLError(f"lib{name} not found")


def _declare(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> None:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


libssl = _load("ssl")
libcrypto = _load("crypto")
_declare(libssl, "SSL_CTX_ctrl", ctypes.c_long, _P, ctypes.c_int, ctypes.c_long, _P)
_declare(libssl, "SSL_CTX_callback_ctrl", ctypes.c_long, _P, ctypes.c_int, _P)
_declare(libssl, "SSL_ctrl", ctypes.c_long, _P, ctypes.c_int, ctypes.c_long, _P)
_declare(libssl, "SSL_CTX_get_options", ctypes.c_uint64, _P)
_declare(libssl, "SSL_CTX_set_ciphersuites", ctypes.c_int, _P, ctypes.c_char_p)
_declare(libssl, "SSL_CTX_set_session_id_context", ctypes.c_int, _P, ctypes.c_char_p,
         ctypes.c_uint)
_declare(libssl, "SSL_CTX_set_timeout", ctypes.c_long, _P, ctypes.c_long)
_declare(libssl, "SSL_get_certificate", _P, _P)
_declare(libcrypto, "EVP_aes_256_cbc", _P)
_declare(libcrypto, "EVP_sha256", _P)
_declare(libcrypto, "EVP_EncryptInit_ex", ctypes.c_int, _P, _P, _P, ctypes.c_char_p, _UBYTES)
_declare(libcrypto, "EVP_DecryptInit_ex", ctypes.c_int, _P, _P, _P, ctypes.c_char_p, _UBYTES)
_declare(libcrypto, "HMAC_Init_ex", ctypes.c_int, _P, ctypes.c_char_p, ctypes.c_int, _P, _P)
_declare(libcrypto, "RAND_bytes", ctypes.c_int, _UBYTES, ctypes.c_int)
_declare(libcrypto, "CRYPTO_malloc", _P, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int)
_declare(libcrypto, "X509_digest", ctypes.c_int, _P, _P, ctypes.c_char_p,
         ctypes.POINTER(ctypes.c_uint))


def ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The SSL_CTX* of a context: CPython's PySSLContext starts with it, after the object head.

    Checked before use: the options OpenSSL reports for that pointer must be the context's.
    """
    if sys.implementation.name != "cpython":
        raise LibSSLError("needs CPython's ssl module")
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr or libssl.SSL_CTX_get_options(ptr) != ctx.options:
        raise LibSSLError("the ssl module's SSL_CTX could not be reached")
    return ptr


def set_min_version(ptr: int, version: int) -> None:
    """minTLSVersion (0x301 = TLS 1.0 ... 0x304 = TLS 1.3), as dnsdist sets it."""
    libssl.SSL_CTX_ctrl(ptr, SSL_CTRL_SET_MIN_PROTO_VERSION, version, None)


def set_ciphersuites(ptr: int, suites: str) -> bool:
    return libssl.SSL_CTX_set_ciphersuites(ptr, suites.encode()) == 1


def set_session_id_context(ptr: int, value: bytes) -> None:
    libssl.SSL_CTX_set_session_id_context(ptr, value, len(value))


def set_timeout(ptr: int, seconds: int) -> None:
    libssl.SSL_CTX_set_timeout(ptr, seconds)


def set_session_cache_size(ptr: int, size: int) -> None:
    """numberOfStoredSessions: the server-side cache's size; 0 turns the cache off."""
    if size <= 0:
        libssl.SSL_CTX_ctrl(ptr, SSL_CTRL_SET_SESS_CACHE_MODE, 0, None)
    else:
        libssl.SSL_CTX_ctrl(ptr, SSL_CTRL_SET_SESS_CACHE_SIZE, size, None)


class TicketCallback:
    """The ticket-key callback of one context, as dnsdist's (libssl_ticket_key_callback).

    `active()` gives (name, cipher key, HMAC key) to seal new tickets; `lookup(name)` gives the
    key a ticket names and whether it is the active one, or None for an unknown key (a new
    session then). A ticket under an older key is accepted and sealed again under the active
    one (return 2); `on_decrypt` is told which case it was.
    """

    def __init__(self, active: Callable[[], tuple[bytes, bytes, bytes] | None],
                 lookup: Callable[[bytes], tuple[bytes, bytes, bool] | None],
                 on_decrypt: Callable[[str], None]) -> None:
        self.active, self.lookup, self.on_decrypt = active, lookup, on_decrypt
        self.c_callback = TICKET_CB(self._call)     # kept alive as long as the context

    def install(self, ptr: int) -> None:
        cb = ctypes.cast(self.c_callback, _P)
        if libssl.SSL_CTX_callback_ctrl(ptr, SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB, cb) != 1:
            raise LibSSLError("the tickets key callback was refused")

    def _call(self, _ssl: int, name: ctypes.Array, iv: ctypes.Array, ectx: int, hctx: int,
              enc: int) -> int:
        try:
            return self._encrypt(name, iv, ectx, hctx) if enc else self._decrypt(
                name, iv, ectx, hctx)
        except Exception:  # noqa: BLE001 -- never let an exception cross into OpenSSL
            return -1

    def _encrypt(self, name: ctypes.Array, iv: ctypes.Array, ectx: int, hctx: int) -> int:
        key = self.active()
        if key is None:
            return 0        # no key (rotation off, no file): an empty ticket, a full handshake

        key_name, cipher_key, hmac_key = key
        ctypes.memmove(name, key_name, 16)
        if libcrypto.RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1:
            return -1
        if libcrypto.EVP_EncryptInit_ex(ectx, libcrypto.EVP_aes_256_cbc(), None, cipher_key,
                                        iv) != 1:
            return -1
        if libcrypto.HMAC_Init_ex(hctx, hmac_key, len(hmac_key), libcrypto.EVP_sha256(),
                                  None) != 1:
            return -1
        return 1

    def _decrypt(self, name: ctypes.Array, iv: ctypes.Array, ectx: int, hctx: int) -> int:
        found = self.lookup(ctypes.string_at(name, 16))
        if found is None:
            self.on_decrypt("unknown")
            return 0
        cipher_key, hmac_key, is_active = found
        if libcrypto.HMAC_Init_ex(hctx, hmac_key, len(hmac_key), libcrypto.EVP_sha256(),
                                  None) != 1:
            return -1
        if libcrypto.EVP_DecryptInit_ex(ectx, libcrypto.EVP_aes_256_cbc(), None, cipher_key,
                                        iv) != 1:
            return -1
        if not is_active:
            self.on_decrypt("inactive")
            return 2
        return 1


class OCSPStapler:
    """Staples the OCSP response of the certificate chosen for the handshake, when asked."""

    def __init__(self, responses: dict[bytes, bytes]) -> None:
        self.responses = responses          # SHA-256 of the DER certificate -> DER response
        self.c_callback = STATUS_CB(self._call)

    def install(self, ptr: int) -> None:
        cb = ctypes.cast(self.c_callback, _P)
        libssl.SSL_CTX_callback_ctrl(ptr, SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB, cb)

    def _call(self, ssl_ptr: int, _arg: int) -> int:
        try:
            response = self.responses.get(_fingerprint(libssl.SSL_get_certificate(ssl_ptr)))
            if not response:
                return SSL_TLSEXT_ERR_NOACK
            buf = libcrypto.CRYPTO_malloc(len(response), b"pydist", 0)    # OpenSSL frees it
            if not buf:
                return SSL_TLSEXT_ERR_NOACK
            ctypes.memmove(buf, response, len(response))
            libssl.SSL_ctrl(ssl_ptr, SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP, len(response), buf)
            return SSL_TLSEXT_ERR_OK
        except Exception:  # noqa: BLE001 -- as above: C calls this
            return SSL_TLSEXT_ERR_NOACK


def _fingerprint(x509: int | None) -> bytes:
    if not x509:
        return b""
    out = ctypes.create_string_buffer(64)
    size = ctypes.c_uint(0)
    if libcrypto.X509_digest(x509, libcrypto.EVP_sha256(), out, ctypes.byref(size)) != 1:
        return b""
    return out.raw[:size.value]
