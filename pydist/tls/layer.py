"""The TLS layer: an asyncio Protocol below (raw TCP), a transport above (for the DNS protocol).

pyOpenSSL's `Connection` runs over memory BIOs: bytes from the socket go in with `bio_write`,
records to send come out with `bio_read`. Doing the I/O ourselves, rather than through the
stdlib SSL transport, is what gives per-connection control: client sessions set before the
handshake (`set_session`), the verification result read after a failure (why a certificate was
refused), and the server context swapped for new connections when certificates are reloaded.

Rules:
1. The inner protocol (TCPClientConnection, BackendConnection, a health-check reader) gets
   `connection_made(self)` as soon as the TCP connection exists, so ACLs, per-client limits and
   idle timers apply during the handshake too, as in dnsdist.
2. What the inner protocol writes before the handshake has finished is kept, in order, and sent
   once it has; after a failed handshake nothing is ever sent in clear.
3. Every exit goes through `close()`/`abort()` once; `connection_lost` reaches the inner
   protocol exactly once.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

READ_CHUNK = 65536
# One scratch buffer for every connection: the loop is single-threaded and each read is
# copied out before the next.
_BUF = _ffi.new("char[]", READ_CHUNK)
_SSL_read, _SSL_write, _BIO_read = _lib.SSL_read, _lib.SSL_write, _lib.BIO_read
_SSL_get_error = _lib.SSL_get_error
_WANT_READ, _ZERO_RETURN = _lib.SSL_ERROR_WANT_READ, _lib.SSL_ERROR_ZERO_RETURN
HandshakeHook = Callable[["TLSLayer"], None]
ErrorHook = Callable[["TLSLayer", str], None]


class TLSLayer(asyncio.Protocol):
    """One TLS connection; `handshake` resolves True, or to the failure's reason text."""

    def __init__(self, conn: SSL.Connection, inner: asyncio.Protocol,
                 on_handshake: HandshakeHook | None = None,
                 on_error: ErrorHook | None = None, client: bool = False) -> None:
        self.conn = conn
        self.client = client
        self.inner = inner
        self.on_handshake = on_handshake
        self.on_error = on_error
        self.raw: asyncio.Transport | None = None
        self.done = False
        self.closed = False
        self.failed = False
        self.holding = False
        self.early: list[bytes] = []
        self.handshake: asyncio.Future[bool | str] | None = None

    # --- below: the raw TCP connection
    def connection_made(self, transport: Any) -> None:
        self.raw = transport
        self.handshake = asyncio.get_running_loop().create_future()
        self.inner.connection_made(self)
        if self.client and not self.closed:
            self._advance()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.conn.bio_write(data)
        if not self.done:
            self._advance()
            if not self.done:
                return
        self._read_records()

    def eof_received(self) -> bool | None:
        self.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done and not self.failed:
            self.failed = True
            why = "connection closed during the TLS handshake"
            if self.on_error is not None:
                self.on_error(self, why)
            if self.handshake is not None and not self.handshake.done():
                self.handshake.set_result(why)
        self.inner.connection_lost(exc)

    def _advance(self) -> None:
        """Run the handshake as far as the bytes received allow."""
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return
        except SSL.Error as e:
            self._flush()
            self._failed(describe_error(self.conn, e))
            return
        self.done = True
        self._flush()
        if self.on_handshake is not None:
            self.on_handshake(self)
        if self.handshake is not None and not self.handshake.done():
            self.handshake.set_result(True)
        early, self.early = self.early, []
        for data in early:
            self.write(data)

    def _failed(self, why: str) -> None:
        self.failed = True
        if self.on_error is not None:
            self.on_error(self, why)
        if self.handshake is not None and not self.handshake.done():
            self.handshake.set_result(why)
        self.abort()

    def _read_records(self) -> None:
        """Decrypted bytes to the inner protocol. Hot path: cffi calls straight into the
        pyOpenSSL connection's SSL and BIOs, so "no more data" is a return code, not an
        exception (pyOpenSSL's recv/bio_read raise WantReadError: ~3 µs each, twice a query)."""
        ssl = self.conn._ssl
        self.holding = True     # answers written meanwhile leave in one send, after the loop
        try:
            while not self.closed:
                n = _SSL_read(ssl, _BUF, READ_CHUNK)
                if n <= 0:
                    err = _SSL_get_error(ssl, n)
                    if err == _WANT_READ:
                        break
                    _lib.ERR_clear_error()
                    if err == _ZERO_RETURN:
                        self.close()
                    else:
                        self.abort()
                    return
                self.inner.data_received(_ffi.buffer(_BUF, n)[:])
        finally:
            self.holding = False
        self._flush()       # answers, TLS 1.3 tickets, key updates, alerts

    def _flush(self) -> None:
        raw = self.raw
        bio = self.conn._from_ssl
        while True:
            n = _BIO_read(bio, _BUF, READ_CHUNK)
            if n <= 0:
                return
            if raw is not None and not raw.is_closing():
                raw.write(_ffi.buffer(_BUF, n)[:])
            if n < READ_CHUNK:
                return          # the BIO is drained: spare the call that would say so

    # --- above: the transport the DNS protocol writes to
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.done:
            self.early.append(bytes(data))
            return
        data = bytes(data)
        ssl = self.conn._ssl
        while data:
            n = _SSL_write(ssl, data, len(data))
            if n <= 0:
                _lib.ERR_clear_error()
                self.abort()
                return
            data = data[n:]
        if not self.holding:
            self._flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.failed = self.failed or not self.done   # closed by us (ACL, timeout): no error
        if self.done:
            try:
                self.conn.shutdown()
            except SSL.Error:
                pass
            self._flush()
        if self.raw is not None:
            self.raw.close()

    def abort(self) -> None:
        if self.raw is not None and not self.closed:
            self.closed = True
            self.raw.close()
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "tls":
            return self.conn
        return self.raw.get_extra_info(name, default) if self.raw is not None else default

    def pause_reading(self) -> None:
        if self.raw is not None:
            self.raw.pause_reading()

    def resume_reading(self) -> None:
        if self.raw is not None:
            self.raw.resume_reading()

    # --- facts read after the handshake
    def session_reused(self) -> bool:
        return bool(_lib.SSL_session_reused(self.conn._ssl))

    def version(self) -> str:
        return self.conn.get_protocol_version_name()


def verify_error(conn: SSL.Connection) -> str:
    """OpenSSL's text for why the peer's certificate was refused, or '' if it was not."""
    code = _lib.SSL_get_verify_result(conn._ssl)
    if code == 0:
        return ""
    return _ffi.string(_lib.X509_verify_cert_error_string(code)).decode("ascii", "replace")


def describe_error(conn: SSL.Connection, e: Exception) -> str:
    """A one-line reason: the certificate verdict when there is one, else OpenSSL's reasons."""
    cert = verify_error(conn)
    if cert:
        return f"certificate verify failed: {cert}"
    if isinstance(e, SSL.SysCallError):
        return "connection closed by the peer during the TLS handshake"
    reasons = [r[2] for r in (e.args[0] if e.args and isinstance(e.args[0], list) else [])
               if len(r) > 2 and r[2]]
    return ", ".join(reasons) or (str(e) or e.__class__.__name__)
