"""DNSCrypt from Lua, as dnsdist 1.7.3 has it: addDNSCryptBind, the key and certificate tools
(generateDNSCryptProviderKeys, generateDNSCryptCertificate, printDNSCryptProviderFingerprint),
showDNSCryptBinds, getDNSCryptBind(n)/getDNSCryptBindCount and the context, certificate-pair
and certificate objects with their methods. Texts and error paths as observed on the binary:
file errors in the tools are logged only (errlog), and say nothing on the console."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from luaapi import cppnames as C
from luaapi.bindings.frontends import LISTENER_OPTIONS
from luaapi.bindings.misc import runtime_refused
from luaapi.convert import as_bool, as_int, as_str, is_table, table_to_dict, table_to_list
from luaapi.errors import DnsdistError, PdnsError
from pydist.dns.netmask import AddressError, parse_address
from pydist.registry import CLIENT, FrontendDecl
from pydist.rules.names import DNSName, NameError_

if TYPE_CHECKING:
    from pydist.dnscrypt.context import DNSCryptContext


class _OnFirstUse(ModuleType):
    """A module imported when one of its names is first read: libsodium (ctypes, PyNaCl)
    loads only for configs that use DNSCrypt, not at every start."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attr)


certs: Any = _OnFirstUse("pydist.dnscrypt.cert")
context: Any = _OnFirstUse("pydist.dnscrypt.context")

VERSIONS = {0: 1, 1: 2}          # DNSCryptExchangeVersion.VERSION1/VERSION2 -> es-version
UNKNOWN_VERSION = "Unknown DNSCrypt exchange version"


class CertHandle:
    """A DNSCryptCert (a copy: what getCertificate() returns)."""

    def __init__(self, cert: certs.DNSCryptCert) -> None:
        self.cert = cert

    def getMagic(self, *a: Any) -> bytes: return self.cert.magic
    def getEsVersion(self, *a: Any) -> bytes: return self.cert.es_version_bytes
    def getProtocolMinorVersion(self, *a: Any) -> bytes: return self.cert.protocol_minor_version
    def getSignature(self, *a: Any) -> bytes: return self.cert.signature
    def getResolverPublicKey(self, *a: Any) -> bytes: return self.cert.resolver_public_key
    def getClientMagic(self, *a: Any) -> bytes: return self.cert.client_magic
    def getSerial(self, *a: Any) -> int: return self.cert.serial
    def getTSStart(self, *a: Any) -> int: return self.cert.ts_start
    def getTSEnd(self, *a: Any) -> int: return self.cert.ts_end


class PairHandle:
    """A DNSCryptCertificatePair (nil-able, as dnsdist's shared_ptr)."""

    def __init__(self, pair: Any) -> None:
        self.pair = pair

    def _live(self, method: str) -> Any:
        if self.pair is None:
            raise DnsdistError(f"DNSCryptCertificatePair::{method}() called on a nil value")
        return self.pair

    def getCertificate(self, *a: Any) -> CertHandle:
        return CertHandle(self._live("getCertificate").cert)

    def isActive(self, *a: Any) -> bool:
        return bool(self._live("isActive").active)


class ContextHandle:
    """What getDNSCryptBind(n) returns: one listener's DNSCryptContext (or a nil one)."""

    def __init__(self, rt: Any, ctx: DNSCryptContext | None) -> None:
        self.rt, self.ctx = rt, ctx

    def _live(self, method: str) -> DNSCryptContext:
        if self.ctx is None:
            raise DnsdistError(f"DNSCryptContext::{method}() called on a nil value")
        return self.ctx

    def getProviderName(self, *a: Any) -> str:
        return _name_text(self._live("getProviderName").provider_name)

    def _serial_op(self, method: str, serial: Any, op: str) -> None:
        ctx = self._live(method)
        try:
            getattr(ctx, op)(as_int(serial, C.UINT))
        except context.DNSCryptError as e:
            raise DnsdistError(str(e)) from None

    def markActive(self, serial: Any = None, *a: Any) -> None:
        self._serial_op("markActive", serial, "mark_active")

    def markInactive(self, serial: Any = None, *a: Any) -> None:
        self._serial_op("markInactive", serial, "mark_inactive")

    def removeInactiveCertificate(self, serial: Any = None, *a: Any) -> None:
        self._serial_op("removeInactiveCertificate", serial, "remove_inactive_certificate")

    def reloadCertificates(self, *a: Any) -> None:
        try:
            self._live("reloadCertificates").reload_certificates()
        except certs.DNSCryptFileError as e:
            raise DnsdistError(str(e)) from None

    def loadNewCertificate(self, cert: Any = None, key: Any = None, active: Any = None,
                           *a: Any) -> None:
        ctx = self._live("loadNewCertificate")
        flag = True if active is None else as_bool(active, C.OPT_BOOL)
        try:
            ctx.load_new_certificate(as_str(cert), as_str(key), flag)
        except (certs.DNSCryptFileError, context.DNSCryptError) as e:
            raise DnsdistError(str(e)) from None

    def generateAndLoadInMemoryCertificate(self, provider_key: Any = None, serial: Any = None,
                                           begin: Any = None, end: Any = None,
                                           version: Any = None, *a: Any) -> None:
        ctx = self._live("generateAndLoadInMemoryCertificate")
        made = _generate(self.rt, provider_key, serial, begin, end, version)
        if made is None:
            return
        try:
            ctx.add_new_certificate(*made)
        except context.DNSCryptError as e:
            self.rt.log(str(e))
            self.rt.show(f"Error: {e}\n")

    def _pairs(self) -> list[Any]:
        return list(self.ctx.pairs) if self.ctx is not None else []

    def getCertificatePairs(self, *a: Any) -> Any:
        return self.rt.lua.table_from([PairHandle(p) for p in self._pairs()])

    def getCertificatePair(self, idx: Any = None, *a: Any) -> PairHandle:
        pairs = self._live("getCertificatePair").pairs
        i = _index(idx)
        return PairHandle(pairs[i] if i < len(pairs) else None)

    def getCertificate(self, idx: Any = None, *a: Any) -> CertHandle:
        pairs = self._live("getCertificate").pairs
        i = _index(idx)
        if i >= len(pairs):
            raise DnsdistError(f"This DNSCrypt context has no certificate at index {i}")
        return CertHandle(pairs[i].cert)

    def printCertificates(self, *a: Any) -> str:
        if self.ctx is None:
            return ""
        return certificates_table(self.ctx)


def _index(v: Any) -> int:
    """A size_t argument: negative numbers wrap around as in C++."""
    return as_int(v, C.ULONG) % (1 << 64)


def _name_text(name: str) -> str:
    """DNSName::toStringNoDot, as dnsdist prints a provider name."""
    text = str(DNSName.from_text(name))
    return text[:-1] if len(text) > 1 else text


def certificates_table(ctx: DNSCryptContext) -> str:
    """printCertificates(): '#' stays 1 on every line (dnsdist 1.7.3 never increments it)."""
    lines = [f"{'#':<3}  {'Serial':<8} {'Version':<7} {'From':<21} {'To':<21}"]
    for pair in ctx.pairs:
        c = pair.cert
        lines.append(f"{1:<3}  {c.serial:<8} {2 if c.version == 2 else 1:<7} "
                     f"{certs.date_text(c.ts_start):<21.21} {certs.date_text(c.ts_end):<21.21}")
    return "\n".join(lines) + "\n"


def binds_table(reg: Any) -> str:
    """showDNSCryptBinds(): one line per listener (its UDP and TCP sides share the context)."""
    lines = [f"{'#':<3} {'Address':<20} {'Provider Name':<20.20}"]
    for i, decl in enumerate(_dnscrypt_decls(reg)):
        head = f"{i:<3} {decl.address()} "
        lines.append(f"{head:<25}{_name_text(decl.dnscrypt.provider_name):<20.20}")
    return "\n".join(lines) + "\n"


def _dnscrypt_decls(reg: Any) -> list[FrontendDecl]:
    return [f for f in reg.frontends if f.dnscrypt is not None]


def _version(v: Any) -> int | None:
    """The es-version for a DNSCryptExchangeVersion value (None: unknown, as dnsdist logs)."""
    return 1 if v is None else VERSIONS.get(as_int(v))


def _generate(rt: Any, provider_key: Any, serial: Any, begin: Any, end: Any,
              version: Any) -> tuple[certs.DNSCryptCert, bytes] | None:
    """generateDNSCryptCertificate's core: (certificate, key) or None after dnsdist's errlog."""
    path = as_str(provider_key)
    numbers = (as_int(serial, C.UINT), as_int(begin, "l"), as_int(end, "l"))
    try:
        private = certs.load_provider_private(path)
    except certs.DNSCryptFileError as e:
        rt.log(str(e))
        return None
    es = _version(version)
    if es is None:
        rt.log(UNKNOWN_VERSION)
        return None
    return certs.generate_certificate(private, *numbers, es)


def _write(path: str, data: bytes) -> None:
    """dnsdist writes through an ofstream: a path it cannot open is silently not written."""
    try:
        certs.write_file(path, data)
    except OSError:
        pass


def register(rt: Any) -> None:
    reg = rt.registry
    rt.globals["DNSCryptExchangeVersion"] = rt.lua.table_from({"VERSION1": 0, "VERSION2": 1})

    def add_bind(addr: Any, provider: Any, cert_files: Any, key_files: Any, opts: Any = None,
                 *rest: Any) -> None:
        if runtime_refused(rt, "addDNSCryptBind"):
            return
        options = {k: v for k, v in table_to_dict(opts).items() if k in LISTENER_OPTIONS}
        paths = _cert_key_paths(rt, cert_files, key_files)
        if paths is None:
            return
        try:
            name = as_str(provider)
            ctx = context.DNSCryptContext(name, DNSName.from_text(name).to_wire(), paths)
        except (NameError_, certs.DNSCryptFileError) as e:
            rt.log(str(e))
            return
        try:
            host, port = parse_address(as_str(addr), 443)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        reg.frontends.append(FrontendDecl(host=host, port=port, kind="dnscrypt", dnscrypt=ctx,
                                          options=options))
    rt.fn("addDNSCryptBind", add_bind)

    rt.fn("showDNSCryptBinds", lambda *a: rt.show(binds_table(reg)), no_side_effect=True)
    rt.fn("getDNSCryptBindCount", lambda *a: len(_dnscrypt_decls(reg)), no_side_effect=True)

    def get_bind(n: Any, *a: Any) -> ContextHandle:
        decls = _dnscrypt_decls(reg)
        i = _index(n)
        return ContextHandle(rt, decls[i].dnscrypt if i < len(decls) else None)
    rt.fn("getDNSCryptBind", get_bind, no_side_effect=True)

    def provider_keys(pub: Any, priv: Any, *a: Any) -> None:
        if reg.mode == CLIENT:
            return
        public, secret = certs.crypto.sign_keypair()
        _write(as_str(pub), public)
        _write(as_str(priv), secret)
        rt.show(f"Provider fingerprint is: {certs.fingerprint(public)}\n")
    rt.fn("generateDNSCryptProviderKeys", provider_keys, no_side_effect=True)

    def fingerprint(pub: Any, *a: Any) -> None:
        try:
            public = certs.load_provider_public(as_str(pub))
        except certs.DNSCryptFileError as e:
            rt.log(str(e))
            rt.show(f"Error: {e}\n")
            return
        rt.show(f"Provider fingerprint is: {certs.fingerprint(public)}\n")
    rt.fn("printDNSCryptProviderFingerprint", fingerprint, no_side_effect=True)

    def certificate(provider_key: Any, cert_file: Any, key_file: Any, serial: Any, begin: Any,
                    end: Any, version: Any = None, *a: Any) -> None:
        if reg.mode == CLIENT:
            return
        made = _generate(rt, provider_key, serial, begin, end, version)
        if made is not None:
            _write(as_str(key_file), made[1])
            _write(as_str(cert_file), made[0].raw)
    rt.fn("generateDNSCryptCertificate", certificate, no_side_effect=True)


def _cert_key_paths(rt: Any, cert_files: Any, key_files: Any) -> list[tuple[str, str]] | None:
    """A certificate and a key, or two lists of the same length; None after dnsdist's errlog."""
    if is_table(cert_files) and is_table(key_files):
        c, k = table_to_list(cert_files), table_to_list(key_files)
        if len(c) == len(k):
            return [(as_str(x), as_str(y)) for x, y in zip(c, k, strict=True)]
        rt.log("Error, mismatching number of certificates and keys in call to addDNSCryptBind!")
        return None
    if not is_table(cert_files) and not is_table(key_files):
        return [(as_str(cert_files), as_str(key_files))]
    rt.log("Error, mismatching number of certificates and keys in call to addDNSCryptBind()!")
    return None

