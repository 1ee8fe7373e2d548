"""A DoT backend's client side: its context (validation, CA store, SNI, a small session cache)
and the layer that drives a pyOpenSSL `Connection` over memory BIOs.

pyOpenSSL serves here: a client session is set on the connection before its handshake
(`set_session`), the host or address to verify is set per connection, and after a refusal
OpenSSL's verification verdict says why the certificate was refused.
"""
from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

from pydist.tls.layer import READ_CHUNK, HandshakeFailed, TLSLayer
from pydist.tls.names import TLSConfigError

# One scratch buffer for every connection: the loop is single-threaded and each read is
# copied out before the next.
_BUF = _ffi.new("char[]", READ_CHUNK)
_SSL_read, _SSL_write, _BIO_read = _lib.SSL_read, _lib.SSL_write, _lib.BIO_read
_SSL_get_error = _lib.SSL_get_error
_WANT_READ, _ZERO_RETURN = _lib.SSL_ERROR_WANT_READ, _lib.SSL_ERROR_ZERO_RETURN


class ClientTLSLayer(TLSLayer):
    """The layer over a pyOpenSSL connection (towards a DoT backend)."""

    def __init__(self, conn: SSL.Connection, inner: asyncio.Protocol) -> None:
        super().__init__(inner, client=True)
        self.conn = conn

    def _feed(self, data: bytes) -> None:
        self.conn.bio_write(data)

    def _handshake_step(self) -> bool:
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            return False
        except SSL.Error as e:
            raise HandshakeFailed(describe_error(self.conn, e)) from None
        return True

    def _read_records(self) -> None:
        """Hot path: cffi calls straight into the connection's SSL and BIOs, so "no more data"
        is a return code, not an exception (pyOpenSSL's recv raises WantReadError: ~3 us)."""
        ssl = self.conn._ssl
        self.holding = True     # writes made meanwhile leave in one send, after the loop
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
        self._flush()       # queries, key updates, alerts

    def _flush(self) -> None:
        bio = self.conn._from_ssl
        while True:
            n = _BIO_read(bio, _BUF, READ_CHUNK)
            if n <= 0:
                return
            self._send(_ffi.buffer(_BUF, n)[:])
            if n < READ_CHUNK:
                return          # the BIO is drained: spare the call that would say so

    def _encrypt(self, data: bytes) -> bool:
        ssl = self.conn._ssl
        while data:
            n = _SSL_write(ssl, data, len(data))
            if n <= 0:
                _lib.ERR_clear_error()
                return False
            data = data[n:]
        return True

    def _shutdown(self) -> None:
        try:
            self.conn.shutdown()
        except SSL.Error:
            pass

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


class BackendTLS:
    """A DoT or DoH server's client side: validation, CA store, SNI, a small session cache."""

    MAX_SESSIONS = 20

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.validate = options.get("validateCertificates", True) is not False
        self.subject_name = str(options.get("subjectName") or "")
        self.subject_addr = str(options.get("subjectAddr") or "")
        # as dnsdist 1.7.3: the SNI is the subjectName; it has no `sni` option (observed: a
        # `sni` beside subjectName is ignored)
        self.sni = self.subject_name if self.subject_name and not _is_ip(self.subject_name) \
            else ""
        self.sessions: list[SSL.Session] = []
        self.last_failure = ""
        self.ctx = self._build()

    def _build(self) -> SSL.Context:
        """:raises TLSConfigError: with dnsdist's text, as newServer() raises it (even in
        --check-config): an unknown cipher list, an unreadable caStore."""
        o = self.options
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_CLIENT)
        if o.get("dohPath"):
            ctx.set_alpn_protos([b"h2"])     # a DoH server: HTTP/2 only, as dnsdist asks
        if o.get("ciphers"):
            try:
                ctx.set_cipher_list(str(o["ciphers"]).encode())
            except SSL.Error:
                raise TLSConfigError(f"Error setting the cipher list to '{o['ciphers']}' for "
                                     "the TLS context") from None
        c13 = o.get("ciphers13") or o.get("ciphersTLS13")
        if c13:
            try:
                ctx.set_tls13_ciphersuites(str(c13).encode())
            except SSL.Error:
                pass        # dnsdist 1.7.3 accepts any TLS 1.3 suites string here
        if self.validate:
            ctx.set_verify(SSL.VERIFY_PEER)
            if o.get("caStore"):
                try:
                    ctx.load_verify_locations(str(o["caStore"]))
                except SSL.Error:
                    raise TLSConfigError("Error adding the trusted CAs file "
                                         f"{o['caStore']}") from None
            else:
                ctx.set_default_verify_paths()
        else:
            ctx.set_verify(SSL.VERIFY_NONE)
        return ctx

    def new_layer(self, inner: asyncio.Protocol, resume: bool = True) -> ClientTLSLayer:
        """A client layer for one new connection to the backend (offering a kept session
        unless resume is False)."""
        return ClientTLSLayer(self.new_connection(resume), inner)

    def new_connection(self, resume: bool = True) -> SSL.Connection:
        conn = SSL.Connection(self.ctx, None)
        conn.set_connect_state()
        if self.sni:
            conn.set_tlsext_host_name(self.sni.encode("idna"))
        if self.validate:
            param = _lib.SSL_get0_param(conn._ssl)
            if self.subject_name:
                if _is_ip(self.subject_name):
                    packed = ipaddress.ip_address(self.subject_name).packed
                    _lib.X509_VERIFY_PARAM_set1_ip(param, packed, len(packed))
                else:
                    name = self.subject_name.encode()
                    _lib.X509_VERIFY_PARAM_set1_host(param, name, len(name))
            elif self.subject_addr:
                packed = ipaddress.ip_address(self.subject_addr).packed
                _lib.X509_VERIFY_PARAM_set1_ip(param, packed, len(packed))
        if resume and self.sessions:
            conn.set_session(self.sessions.pop())
        return conn

    def keep_session(self, layer: Any) -> None:
        """Remember the connection's session (a TLS 1.3 ticket arrives after the handshake)."""
        conn = getattr(layer, "conn", None)
        if conn is None or not getattr(layer, "done", False):
            return
        session = conn.get_session()
        if session is not None:
            self.sessions.append(session)
            del self.sessions[:-self.MAX_SESSIONS]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
