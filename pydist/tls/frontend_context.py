"""A DoT frontend's TLS (addTLSLocal): its context and the layer that serves each client.

The engine is Python's `ssl.SSLObject` over memory BIOs, on the system OpenSSL dnsdist itself
links; `libssl.py` adds what the module lacks (TLS 1.3 suites, session timeout and cache size,
dnsdist's ticket key ring, OCSP stapling). A context is built once and handed to each new
connection; a reload builds a new one and swaps it in, so connections already open keep theirs
and new ones get the new certificates (dnsdist's `loadNewCertificatesAndKeys`,
`reloadAllCertificates`). As in dnsdist, a new context starts a new ticket key ring.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydist.tls import libssl
from pydist.tls.layer import (
    READ_CHUNK,
    ErrorHook,
    HandshakeFailed,
    HandshakeHook,
    TLSLayer,
)
from pydist.tls.names import FRONTEND_TLS_COUNTERS, HANDSHAKE_ERRORS, TLSConfigError
from pydist.tls.tickets import TicketKeyRing

# protocol numbers for SSL_CTX_set_min_proto_version (Python's setter warns below TLS 1.2)
VERSIONS = {"tls1.0": 0x301, "tls1.1": 0x302, "tls1.2": 0x303, "tls1.3": 0x304}
_VERSION_COUNTER = {"TLSv1": "tls10Queries", "TLSv1.1": "tls11Queries",
                    "TLSv1.2": "tls12Queries", "TLSv1.3": "tls13Queries"}
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_SSL_NOISE = re.compile(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$")
_WantRead, _ZeroReturn, _SSLError = ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLError


def min_version(text: str) -> int:
    """minTLSVersion as dnsdist parses it (its message lacks the closing quote, as 1.7.3's does)."""
    v = VERSIONS.get(text)
    if v is None:
        raise TLSConfigError(f"Unknown TLS version '{text}")
    return v


def version_counter(version: str) -> str:
    """The per-frontend counter a query over this negotiated version goes to."""
    return _VERSION_COUNTER.get(version, "tlsUnknownQueries")


def opts_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise TLSConfigError(f"An error occurred while trying to load the TLS server {what} "
                             f"file: {path}") from None


class ServerTLSLayer(TLSLayer):
    """The layer over one `ssl.SSLObject` (a DoT client of ours)."""

    def __init__(self, obj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 inner: asyncio.Protocol, on_handshake: HandshakeHook | None = None,
                 on_error: ErrorHook | None = None) -> None:
        super().__init__(inner, on_handshake, on_error)
        self.obj, self.incoming, self.outgoing = obj, incoming, outgoing
        self.sni: str | None = None

    def _feed(self, data: bytes) -> None:
        self.incoming.write(data)

    def _handshake_step(self) -> bool:
        try:
            self.obj.do_handshake()
        except _WantRead:
            return False
        except _SSLError as e:
            raise HandshakeFailed(describe_error(e)) from None
        except OSError:
            raise HandshakeFailed("connection closed during the TLS handshake") from None
        self.sni = getattr(self.obj, "sni", None)
        return True

    def _read_records(self) -> None:
        """Hot path: read while the engine or its input BIO holds bytes, so the common case
        (one whole query record) ends without the SSLWantReadError a further read would raise."""
        obj, incoming, inner = self.obj, self.incoming, self.inner
        self.holding = True     # answers written meanwhile leave in one send, after the loop
        try:
            while not self.closed:
                try:
                    data = obj.read(READ_CHUNK)
                except _WantRead:
                    break
                except _ZeroReturn:
                    self.close()
                    return
                except (_SSLError, OSError):
                    self.abort()
                    return
                if not data:
                    self.close()
                    return
                inner.data_received(data)
                if not incoming.pending and not obj.pending():
                    break
        finally:
            self.holding = False
        self._flush()       # answers, TLS 1.3 tickets, key updates, alerts

    def _flush(self) -> None:
        if self.outgoing.pending:
            self._send(self.outgoing.read())

    def _encrypt(self, data: bytes) -> bool:
        try:
            self.obj.write(data)
        except (_SSLError, OSError):
            return False
        return True

    def _shutdown(self) -> None:
        try:
            self.obj.unwrap()
        except (_SSLError, OSError, ValueError):
            pass

    def session_reused(self) -> bool:
        return bool(self.obj.session_reused)

    def version(self) -> str:
        return self.obj.version() or ""


def describe_error(e: ssl.SSLError) -> str:
    """OpenSSL's reason text without Python's decoration ("no shared cipher")."""
    text = _SSL_NOISE.sub("", str(e.args[1] if len(e.args) > 1 else e))
    return text or (e.reason or e.__class__.__name__).lower()


class FrontendTLS:
    """One addTLSLocal's context, its ticket keys, reloadable certificates and counters."""

    def __init__(self, certs: Sequence[str], keys: Sequence[str], options: dict[str, Any],
                 log: Callable[[str], None] = print, alpn: Sequence[str] = ()) -> None:
        self.certs, self.keys = list(certs), list(keys)
        self.alpn = list(alpn)          # DoH: h2 and http/1.1, as h2o offers
        self.options = options
        self.log = log
        self.ctx: ssl.SSLContext | None = None
        self.ring = TicketKeyRing(self._ring_size())
        self.counters = dict.fromkeys(FRONTEND_TLS_COUNTERS, 0)
        self.errors = {e[0]: 0 for e in HANDSHAKE_ERRORS}
        self.next_rotation = 0.0
        self.min_version = min_version(str(options.get("minTLSVersion") or "tls1.0"))

    # --- options
    def rotation_delay(self) -> float:
        """ticketsKeysRotationDelay (dnsdist's default 12 h; 0 turns automatic rotation off)."""
        value = self.options.get("ticketsKeysRotationDelay")
        return 43200.0 if value is None else float(value)

    def tickets_enabled(self) -> bool:
        return self.options.get("sessionTickets") is not False and self._ring_size() > 0

    def _ring_size(self) -> int:
        value = self.options.get("numberOfTicketsKeys")
        return 5 if value is None else int(value)

    # --- building
    def load(self) -> None:
        """Read the files and build the context now. :raises TLSConfigError: dnsdist's text."""
        self.ctx, self.ring = self._build(self.certs, self.keys)

    def _build(self, certs: Sequence[str], keys: Sequence[str]
               ) -> tuple[ssl.SSLContext, TicketKeyRing]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers("DEFAULT")      # OpenSSL's defaults, as dnsdist (not Python's own list)
        self._set_options(ctx)
        if self.alpn:
            ctx.set_alpn_protocols(self.alpn)
        ptr = libssl.ctx_pointer(ctx)
        libssl.set_min_version(ptr, self.min_version)
        libssl.set_session_id_context(ptr, b"")     # Python sets "Python"; dnsdist none
        self._set_ciphers(ctx, ptr)
        fingerprints = [self._load_pair(ctx, c, k) for c, k in zip(certs, keys, strict=True)]
        if self.options.get("sessionTimeout"):
            libssl.set_timeout(ptr, int(self.options["sessionTimeout"]))
        stored = self.options.get("numberOfStoredSessions")
        libssl.set_session_cache_size(ptr, 20480 if stored is None else int(stored))
        ring = self._new_ring()
        keep: list[Any] = []        # C callbacks live as long as the context
        if self.tickets_enabled():
            callback = libssl.TicketCallback(ring.active, ring.lookup, self._ticket_decrypted)
            callback.install(ptr)
            keep.append(callback)
        responses = self._ocsp_responses(fingerprints)
        if responses:
            stapler = libssl.OCSPStapler(responses)
            stapler.install(ptr)
            keep.append(stapler)
        ctx.sni_callback = _remember_sni
        if self.options.get("keyLogFile"):
            self._set_keylog(ctx, str(self.options["keyLogFile"]))
        ctx.pydist_callbacks = keep         # type: ignore[attr-defined]
        return ctx, ring

    def _set_options(self, ctx: ssl.SSLContext) -> None:
        flags = ctx.options | ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        if self.options.get("preferServerCiphers", True) is False:
            flags &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        else:
            flags |= ssl.OP_CIPHER_SERVER_PREFERENCE
        if not self.tickets_enabled():
            flags |= ssl.OP_NO_TICKET
        ctx.options = flags

    def _set_ciphers(self, ctx: ssl.SSLContext, ptr: int) -> None:
        """dnsdist's texts: a startup error, fatal when serving."""
        ciphers = self.options.get("ciphers")
        if ciphers:
            try:
                ctx.set_ciphers(str(ciphers))
            except ssl.SSLError:
                raise TLSConfigError(f"The TLS ciphers could not be set: {ciphers}") from None
        suites = self.options.get("ciphersTLS13")
        if suites and not libssl.set_ciphersuites(ptr, str(suites)):
            raise TLSConfigError(f"The TLS 1.3 ciphers could not be set: {suites}")

    @staticmethod
    def _load_pair(ctx: ssl.SSLContext, cert_path: str, key_path: str) -> bytes:
        """One certificate chain and its key (RSA and ECDSA pairs sit side by side in OpenSSL).
        :returns: the SHA-256 of the leaf certificate, to match OCSP responses."""
        pem = _read(cert_path, "certificate")
        _read(key_path, "key")
        leaf = _PEM_CERT.search(pem)
        try:
            if leaf is None:
                raise ValueError
            der = ssl.PEM_cert_to_DER_cert(leaf.group(0).decode("ascii"))
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
        except (ValueError, ssl.SSLError):
            raise TLSConfigError("An error occurred while trying to load the TLS server "
                                 f"certificate file: {cert_path}") from None
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as e:
            if e.reason == "KEY_VALUES_MISMATCH":
                raise TLSConfigError("The key from '" + key_path + "' does not match the "
                                     "certificate from '" + cert_path + "'") from None
            raise TLSConfigError("An error occurred while trying to load the TLS server key "
                                 f"file: {key_path}") from None
        return hashlib.sha256(der).digest()

    def _new_ring(self) -> TicketKeyRing:
        """dnsdist: keys from ticketKeyFile, else one fresh key unless rotation is off."""
        ring = TicketKeyRing(self._ring_size())
        delay = self.rotation_delay()
        path = self.options.get("ticketKeyFile")
        if path:
            ring.load_file(str(path))
        elif delay > 0:
            ring.rotate()
        self.next_rotation = time.time() + delay if delay > 0 else 0.0
        return ring

    def _ticket_decrypted(self, case: str) -> None:
        key = "tlsUnknownTicketKey" if case == "unknown" else "tlsInactiveTicketKey"
        self.counters[key] += 1

    def _ocsp_responses(self, fingerprints: list[bytes]) -> dict[bytes, bytes]:
        files = opts_list(self.options.get("ocspResponses"))
        return {fp: _read(path, "OCSP response")
                for fp, path in zip(fingerprints, files, strict=False)}

    def _set_keylog(self, ctx: ssl.SSLContext, path: str) -> None:
        """keyLogFile: NSS key log lines appended, for Wireshark (as dnsdist does)."""
        try:
            ctx.keylog_filename = path
        except OSError as e:
            self.log(f"Unable to open the TLS key log file {path}: {e.strerror}")

    # --- runtime (getTLSContext(n) / getTLSFrontend(n) methods, reloadAllCertificates())
    def load_new_certificates(self, certs: Sequence[str], keys: Sequence[str]) -> None:
        """New files for new connections; :raises TLSConfigError: the old context stays."""
        self.certs, self.keys = list(certs), list(keys)   # kept even on failure, as dnsdist
        self.ctx, self.ring = self._build(certs, keys)

    def reload(self) -> None:
        """Read the same files again (a renewed certificate), keeping the old on failure."""
        self.load_new_certificates(self.certs, self.keys)

    def rotate_ticket_key(self) -> None:
        """A fresh random key seals new tickets; the older ones still open theirs."""
        self.ring.rotate()
        delay = self.rotation_delay()
        if delay > 0:
            self.next_rotation = time.time() + delay

    def load_tickets_keys(self, path: str) -> None:
        """Keys from a dnsdist ticket key file join the ring, its last one active."""
        self.ring.load_file(path)
        delay = self.rotation_delay()
        if delay > 0:
            self.next_rotation = time.time() + delay

    # --- connections
    def new_layer(self, inner: asyncio.Protocol, on_handshake: HandshakeHook | None = None,
                  on_error: ErrorHook | None = None) -> ServerTLSLayer:
        """A server layer for one accepted connection, on the current context."""
        assert self.ctx is not None
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx.wrap_bio(incoming, outgoing, server_side=True)
        return ServerTLSLayer(obj, incoming, outgoing, inner, on_handshake, on_error)

    def handshake_done(self, layer: TLSLayer) -> None:
        self.counters["tlsResumptions" if layer.session_reused() else "tlsNewSessions"] += 1

    def handshake_failed(self, layer: TLSLayer, why: str) -> None:
        text = why.lower()
        for name, _, reason, _ in HANDSHAKE_ERRORS:
            if reason in text:
                self.errors[name] += 1
                return

    def share_counters(self, counters: dict[str, Any]) -> None:
        """Keep the TLS counters in the listener's own counter dict (see FRONTEND_TLS_COUNTERS)."""
        for key in FRONTEND_TLS_COUNTERS:
            counters.setdefault(key, 0)
        self.counters = counters


def _remember_sni(obj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
    """The name the client asked for, kept on the connection for SNIRule."""
    obj.sni = server_name
