"""TLS contexts: a DoT frontend's (certificates, versions, ciphers, tickets, OCSP, key log,
reload at runtime, counters) and a DoT backend's (validation, CA store, SNI, session cache).

A context is built once and handed to each new connection; a reload builds a new one and
swaps it in, so connections already open keep theirs and new ones get the new certificates
(as dnsdist's `loadNewCertificatesAndKeys` and `reloadAllCertificates` do).
"""
from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL
from OpenSSL._util import lib as _lib

from pydist.tls.layer import TLSLayer
from pydist.tls.names import FRONTEND_TLS_COUNTERS, HANDSHAKE_ERRORS, TLSConfigError  # noqa: F401

VERSIONS = {"tls1.0": SSL.TLS1_VERSION, "tls1.1": SSL.TLS1_1_VERSION,
            "tls1.2": SSL.TLS1_2_VERSION, "tls1.3": SSL.TLS1_3_VERSION}
# dnsdist 1.7 counts handshake failures under these causes (showTLSErrorCounters' columns),
# matched here on OpenSSL's reason text.
# (Prometheus label, showTLSErrorCounters column, OpenSSL reason text, API JSON key suffix)
_VERSION_COUNTER = {"TLSv1": "tls10Queries", "TLSv1.1": "tls11Queries",
                    "TLSv1.2": "tls12Queries", "TLSv1.3": "tls13Queries"}
TICKET_KEY_SIZE = 80        # dnsdist's ticket key file: name 16 + cipher 32 + HMAC 32 bytes


def min_version(text: str) -> int:
    """minTLSVersion as dnsdist parses it (its message lacks the closing quote, as 1.7.3's does)."""
    v = VERSIONS.get(text)
    if v is None:
        raise TLSConfigError(f"Unknown TLS version '{text}")
    return v


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise TLSConfigError(f"An error occurred while trying to load the TLS server {what} "
                             f"file: {path}") from None


class FrontendTLS:
    """One addTLSLocal's context, its reloadable certificates and its counters."""

    def __init__(self, certs: Sequence[str], keys: Sequence[str], options: dict[str, Any],
                 log: Callable[[str], None] = print) -> None:
        self.certs, self.keys = list(certs), list(keys)
        self.options = options
        self.log = log
        self.ctx: SSL.Context | None = None
        self.counters = dict.fromkeys(FRONTEND_TLS_COUNTERS, 0)
        self.errors = {e[0]: 0 for e in HANDSHAKE_ERRORS}
        self.ticket_generation = 0
        self.next_rotation = 0.0
        self.min_version = min_version(str(options.get("minTLSVersion") or "tls1.0"))
        self._keylog = None

    # --- building
    def load(self) -> None:
        """Read the files and build the context now. :raises TLSConfigError: dnsdist's text."""
        if self.options.get("ticketKeyFile"):
            self._check_ticket_file(str(self.options["ticketKeyFile"]))
        self.ctx = self._build(self.certs, self.keys)
        self.next_rotation = time.time() + self.rotation_delay()

    def rotation_delay(self) -> float:
        """ticketsKeysRotationDelay (dnsdist's default 12 h; 0 turns automatic rotation off)."""
        value = self.options.get("ticketsKeysRotationDelay")
        return 43200.0 if value is None else float(value)

    def _build(self, certs: Sequence[str], keys: Sequence[str]) -> SSL.Context:
        opts = self.options
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(self.min_version)
        flags = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION
        if opts.get("preferServerCiphers", True) is not False:
            flags |= SSL.OP_CIPHER_SERVER_PREFERENCE
        if opts.get("sessionTickets") is False or opts.get("numberOfTicketsKeys") == 0:
            flags |= SSL.OP_NO_TICKET
        ctx.set_options(flags)
        ctx.set_session_id(b"pydist-dot")
        if opts.get("sessionTimeout"):
            ctx.set_timeout(int(opts["sessionTimeout"]))
        try:
            if opts.get("ciphers"):
                ctx.set_cipher_list(str(opts["ciphers"]).encode())
            if opts.get("ciphersTLS13"):
                ctx.set_tls13_ciphersuites(str(opts["ciphersTLS13"]).encode())
        except SSL.Error as e:
            raise TLSConfigError(f"Error setting up TLS cipher preferences: {e}") from None
        fingerprints = []
        for cert_path, key_path in zip(certs, keys, strict=True):
            chain = _pem_certs(_read(cert_path, "certificate"), cert_path)
            try:
                key = serialization.load_pem_private_key(_read(key_path, "key"), None)
            except (ValueError, TypeError):
                raise TLSConfigError("An error occurred while trying to load the TLS server key "
                                     f"file: {key_path}") from None
            try:
                ctx.use_certificate(chain[0])
                for extra in chain[1:]:
                    ctx.add_extra_chain_cert(extra)
                ctx.use_privatekey(key)
                ctx.check_privatekey()
            except SSL.Error:
                raise TLSConfigError("The key from '" + key_path + "' does not match the "
                                     "certificate from '" + cert_path + "'") from None
            fingerprints.append(chain[0].fingerprint(hashes.SHA256()))
        self._set_ocsp(ctx, fingerprints)
        if opts.get("keyLogFile"):
            self._set_keylog(ctx, str(opts["keyLogFile"]))
        return ctx

    def _set_ocsp(self, ctx: SSL.Context, fingerprints: list[bytes]) -> None:
        files = opts_list(self.options.get("ocspResponses"))
        if not files:
            return
        pairs = zip(fingerprints, files, strict=False)
        responses = {fp: _read(path, "OCSP response") for fp, path in pairs}

        def staple(conn: SSL.Connection, _: Any) -> bytes:
            cert = conn.get_certificate()
            if cert is None:
                return b""
            return responses.get(cert.to_cryptography().fingerprint(hashes.SHA256()), b"")
        ctx.set_ocsp_server_callback(staple)

    def _set_keylog(self, ctx: SSL.Context, path: str) -> None:
        """keyLogFile: NSS key log lines appended, for Wireshark (as dnsdist does)."""
        if self._keylog is None:
            try:
                self._keylog = open(path, "ab", buffering=0)
            except OSError as e:
                self.log(f"Unable to open the TLS key log file {path}: {e.strerror}")
                return
        keylog = self._keylog
        ctx.set_keylog_callback(lambda conn, line: keylog.write(line + b"\n"))

    # --- runtime (getTLSContext(n) / getTLSFrontend(n) methods, reloadAllCertificates())
    def load_new_certificates(self, certs: Sequence[str], keys: Sequence[str]) -> None:
        """New files for new connections; :raises TLSConfigError: the old context stays."""
        self.certs, self.keys = list(certs), list(keys)   # kept even on failure, as dnsdist
        self.ctx = self._build(certs, keys)

    def reload(self) -> None:
        """Read the same files again (a renewed certificate), keeping the old on failure."""
        self.load_new_certificates(self.certs, self.keys)

    def rotate_ticket_key(self) -> None:
        """A fresh ticket key: a new context (OpenSSL draws one per context) for new sessions."""
        self.ctx = self._build(self.certs, self.keys)
        self.ticket_generation += 1
        self.next_rotation = time.time() + self.rotation_delay()

    def load_tickets_keys(self, path: str) -> None:
        """Check a dnsdist ticket key file (80-byte keys); then rotate, as a new key is active.

        pyOpenSSL cannot install given ticket keys (no SSL_CTX_set_tlsext_ticket_keys), so the
        new active key is a fresh random one: resumption works, shared keys across hosts do not.
        """
        self._check_ticket_file(path)
        self.rotate_ticket_key()

    @staticmethod
    def _check_ticket_file(path: str) -> None:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        if size < TICKET_KEY_SIZE:
            raise TLSConfigError("Unable to load a ticket key from the OpenSSL tickets key file")

    # --- connections
    def new_connection(self) -> SSL.Connection:
        conn = SSL.Connection(self.ctx, None)
        conn.set_accept_state()
        return conn

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



def version_counter(version: str) -> str:
    """The per-frontend counter a query over this negotiated version goes to."""
    return _VERSION_COUNTER.get(version, "tlsUnknownQueries")


def opts_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _pem_certs(data: bytes, path: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TLSConfigError("An error occurred while trying to load the TLS server certificate "
                             f"file: {path}")
    return certs


class BackendTLS:
    """A DoT server's client side: validation, CA store, SNI and a small session cache."""

    MAX_SESSIONS = 20

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.validate = options.get("validateCertificates", True) is not False
        self.subject_name = str(options.get("subjectName") or "")
        self.subject_addr = str(options.get("subjectAddr") or "")
        self.sni = str(options.get("sni") or "") or (
            self.subject_name if self.subject_name and not _is_ip(self.subject_name) else "")
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

    def new_connection(self) -> SSL.Connection:
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
        if self.sessions:
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
