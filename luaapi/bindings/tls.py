"""DNS over TLS from Lua: addTLSLocal, getTLSContext/getTLSFrontend and their reload and ticket
methods, reloadAllCertificates, showTLSContexts, showTLSErrorCounters. Certificates are read
when the listener is bound (not in --check-config, as dnsdist 1.7.3: a missing file is fatal only
when serving)."""
from __future__ import annotations

import time
from typing import Any

from luaapi.bindings.frontends import LISTENER_OPTIONS
from luaapi.bindings.misc import runtime_refused
from luaapi.convert import as_int, as_str, is_table, str_or_list, table_to_dict
from luaapi.errors import DnsdistError, LuaArgError, PdnsError
from pydist.dns.netmask import AddressError, parse_address
from pydist.registry import FrontendDecl
from pydist.tls.names import HANDSHAKE_ERRORS, TLSConfigError

TLS_OPTIONS = LISTENER_OPTIONS + (
    "provider", "ciphers", "ciphersTLS13", "minTLSVersion", "numberOfTicketsKeys",
    "ticketKeyFile", "ticketsKeysRotationDelay", "sessionTimeout", "sessionTickets",
    "numberOfStoredSessions", "ocspResponses", "preferServerCiphers", "keyLogFile",
    "releaseBuffers", "enableRenegotiation")


class TLSFrontendHandle:
    """What getTLSFrontend(n) and getTLSContext(n) return: dnsdist's methods on one listener."""

    def __init__(self, decl: FrontendDecl) -> None:
        self.decl = decl

    def loadNewCertificatesAndKeys(self, certs: Any = None, keys: Any = None, *a: Any) -> None:
        certs_l, keys_l = _files(certs), _files(keys)
        if len(certs_l) != len(keys_l):
            raise DnsdistError("Error, mismatching number of certificates and keys in call to "
                               "loadNewCertificatesAndKeys()!")
        try:
            self.decl.tls.load_new_certificates(certs_l, keys_l)
        except TLSConfigError as e:
            raise DnsdistError(str(e)) from None

    def reloadCertificates(self, *a: Any) -> None:
        try:
            self.decl.tls.reload()
        except TLSConfigError as e:
            raise DnsdistError(str(e)) from None

    def rotateTicketsKey(self, *a: Any) -> None:
        self.decl.tls.rotate_ticket_key()

    def loadTicketsKeys(self, path: Any = None, *a: Any) -> None:
        try:
            self.decl.tls.load_tickets_keys(as_str(path))
        except TLSConfigError as e:
            raise DnsdistError(str(e)) from None

    def getAddressAndPort(self, *a: Any) -> str:
        return self.decl.address()

    def toString(self, *a: Any) -> str:
        return self.decl.address()

    tostring = toString


METHODS = ("loadNewCertificatesAndKeys", "reloadCertificates", "rotateTicketsKey",
           "loadTicketsKeys", "getAddressAndPort", "toString", "tostring")


def lua_object(rt: Any, handle: TLSFrontendHandle) -> Any:
    """A Lua table whose methods go through the runtime's wrapper, so an exception reads
    'Caught exception: ...' as dnsdist's do (plain Python methods would bypass it)."""
    t = rt.lua.table()
    for name in METHODS:
        t[name] = rt.wrap(_method(getattr(handle, name)))
    return t


def _method(bound: Any) -> Any:
    """A Lua method (called as obj:m(...), so its first argument is the table itself)."""
    return lambda _self, *a: bound(*a)


def _files(v: Any) -> list[str]:
    return str_or_list(v, "std::string") if v is not None else []


def _tls_decls(reg: Any) -> list[FrontendDecl]:
    return [f for f in reg.frontends if f.kind == "tls"]


def register(rt: Any) -> None:
    reg = rt.registry

    def add_tls_local(addr: Any = None, certs: Any = None, keys: Any = None, opts: Any = None,
                      *rest: Any) -> None:
        if runtime_refused(rt, "addTLSLocal"):
            return
        if keys is None:
            raise LuaArgError("This function requires at least 3 parameter(s)")
        options = {k: v for k, v in table_to_dict(opts).items() if isinstance(k, str)}
        for key in ("ocspResponses",):
            if is_table(options.get(key)):
                options[key] = _files(options[key])
        certs_l, keys_l = _files(certs), _files(keys)
        if len(certs_l) != len(keys_l):
            rt.log("Error, mismatching number of certificates and keys in call to addTLSLocal()!")
            return
        try:
            host, port = parse_address(as_str(addr), 853)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        from pydist.tls.frontend_context import (  # ssl only when used
            FrontendTLS,
            min_version,
        )
        try:
            min_version(str(options.get("minTLSVersion") or "tls1.0"))
            tls = FrontendTLS(certs_l, keys_l, options, reg.log)
        except TLSConfigError as e:
            raise DnsdistError(str(e)) from None
        decl = FrontendDecl(host=host, port=port, udp=False, tcp=True, tls=tls, kind="tls",
                            options=options)
        tls.share_counters(decl.tcp_state.tcp_counters)
        reg.frontends.append(decl)
        reg.stats.with_dot = True
    rt.fn("addTLSLocal", add_tls_local)

    def getter(what: str, plural: str) -> Any:
        def get_handle(n: Any = None, *a: Any) -> Any:
            decls = _tls_decls(reg)
            i = int(n) if isinstance(n, (int, float)) else -1
            if 0 <= i < len(decls):
                return lua_object(rt, TLSFrontendHandle(decls[i]))
            reg.log(f"Error: trying to get TLS {what} with index {i}u but we only have "
                    f"{len(decls)}u {plural}")
            return None
        return get_handle
    rt.fn("getTLSFrontend", getter("frontend", "frontends"))
    rt.fn("getTLSContext", getter("context", "context(s)"))
    rt.fn("getTLSFrontendCount", lambda *a: len(_tls_decls(reg)), no_side_effect=True)

    def reload_all(*a: Any) -> None:
        """A renewed certificate (Let's Encrypt) picked up by every DoT and DoH listener."""
        for decl in [f for f in reg.frontends if f.tls is not None]:
            if decl.tls.ctx is None:
                continue
            try:
                decl.tls.reload()
            except TLSConfigError as e:
                reg.log(f"Error reloading certificates for frontend {decl.address()}: {e}")
    rt.fn("reloadAllCertificates", reload_all)

    def generate_ocsp(cert: Any, ca_cert: Any, ca_key: Any, out: Any, days: Any, minutes: Any,
                      *a: Any) -> None:
        """Runs in every mode, --check-config included, as dnsdist's does."""
        from pydist.tls import ocsp     # cryptography's x509 only when asked for
        try:
            ocsp.generate_response(as_str(cert), as_str(ca_cert), as_str(ca_key), as_str(out),
                                   as_int(days), as_int(minutes))
        except ocsp.OCSPError as e:
            raise DnsdistError(str(e)) from None
    rt.fn("generateOCSPResponse", generate_ocsp)

    rt.fn("showTLSContexts", lambda *a: rt.show(contexts_table(_tls_decls(reg))),
          no_side_effect=True)

    def show_error_counters(*a: Any) -> None:
        rt.show(error_counters_table(_tls_decls(reg)))
    rt.fn("showTLSErrorCounters", show_error_counters, no_side_effect=True)


def contexts_table(decls: list[FrontendDecl]) -> str:
    """showTLSContexts(): the ring's key count; the next rotation reads 1970 when it is off."""
    lines = [f"{'#':<3} {'Address':<20.20} {'# ticket keys':<14} {'Rotation delay':<14} "
             f"{'Next rotation':<20} "]
    for i, d in enumerate(decls):
        tls = d.tls
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(tls.next_rotation)) \
            if tls.ctx is not None else ""
        keys = len(tls.ring) if tls.ctx is not None else 0
        lines.append(f"{i:<3} {d.address():<20.20} {keys:<14} {int(tls.rotation_delay()):<14} "
                     f"{when:<20} ")
    return "\n".join(lines) + "\n"


def error_counters_table(decls: list[FrontendDecl]) -> str:
    """showTLSErrorCounters(): one column per handshake-failure cause, as dnsdist 1.7.3."""
    head = f"{'#':<3} {'Address':<20.20} " + " ".join(f"{e[1]:<23.23}" for e in HANDSHAKE_ERRORS)
    lines = [head]
    for i, d in enumerate(decls):
        lines.append(f"{i:<3} {d.address():<20.20} " + " ".join(
            f"{d.tls.errors[e[0]]:<23}" for e in HANDSHAKE_ERRORS))
    return "\n".join(lines) + "\n\n"          # dnsdist 1.7.3 ends it with an empty line
