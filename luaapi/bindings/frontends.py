"""Listeners (setLocal, addLocal) and the query ACL."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.misc import runtime_refused
from luaapi.convert import as_str, check_count, is_table, table_to_dict, table_to_list
from luaapi.errors import DnsdistError, PdnsError
from pydist.dns.netmask import AddressError, parse_address, parse_netmask
from pydist.registry import ClientState, FrontendDecl

LISTENER_OPTIONS = ("reusePort", "tcpFastOpenQueueSize", "interface", "cpus",
                    "tcpListenQueueSize", "maxInFlight", "maxConcurrentTCPConnections")


def _decl(addr: Any, opts: Any, port: int = 53) -> FrontendDecl:
    try:
        host, p = parse_address(as_str(addr), port)
    except AddressError as e:
        raise PdnsError(str(e)) from None
    options = {k: v for k, v in table_to_dict(opts).items() if isinstance(k, str)}
    if "cpus" in options:     # a Lua table: as a value (compared by a reload, read by workers)
        options["cpus"] = sorted({int(c) for c in table_to_list(options["cpus"])
                                  if isinstance(c, (int, float)) and not isinstance(c, bool)})
    return FrontendDecl(host=host, port=p, options=options)


def _mask(m: Any, target: str = "Netmask") -> str:
    text = as_str(m, target)
    try:
        parse_netmask(text)
    except AddressError as e:
        raise PdnsError(str(e)) from None
    return text


def netmask_list(v: Any) -> list[str]:
    """One netmask or a table of them, each checked as dnsdist's Netmask constructor does."""
    items = table_to_list(v) if is_table(v) else [v]
    return [_mask(m, "std::string") for m in items]


def register(rt: Any) -> None:
    reg = rt.registry

    def set_local(addr: Any = None, opts: Any = None, *rest: Any) -> None:
        if runtime_refused(rt, "setLocal"):
            return
        decl = _decl(addr, opts)
        reg.frontends = [f for f in reg.frontends if f.kind != "plain"]
        reg.frontends.append(decl)
    rt.fn("setLocal", set_local)

    def add_local(addr: Any = None, opts: Any = None, *rest: Any) -> None:
        check_count("addLocal", (addr, opts) + rest, 2)   # the 1.0 form addLocal(a, doTCP, ...)
        if runtime_refused(rt, "addLocal"):
            return
        reg.frontends.append(_decl(addr, opts if is_table(opts) else None))
    rt.fn("addLocal", add_local)

    def set_acl(masks: Any) -> None:
        items = [_mask(m) for m in (table_to_list(masks) if is_table(masks) else [masks])]
        reg.acl.clear()
        for m in items:
            reg.acl.add(m)
    rt.fn("setACL", set_acl)
    rt.fn("addACL", lambda m, *r: reg.acl.add(_mask(m)))
    rt.fn("rmACL", lambda m, *r: reg.acl.remove(_mask(m)))

    def set_acl_from_file(path: Any) -> None:
        name = as_str(path)
        try:
            with open(name) as f:
                lines = f.read().splitlines()
        except OSError as e:     # a std::runtime_error in dnsdist: 'Caught exception: ...'
            raise DnsdistError(f"Could not open '{name}': {e.strerror}") from None
        masks = []
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line:
                masks.append(_mask(line))
        reg.acl.clear()
        for m in masks:
            reg.acl.add(m)
    rt.fn("setACLFromFile", set_acl_from_file)

    def show_acl(*a: Any) -> None:
        for m in reg.acl.to_strings():
            rt.show(m + "\n")
    rt.fn("showACL", show_acl, no_side_effect=True)

    def show_binds(*a: Any) -> None:
        rt.show("#   Address                        Protocol              Queries\n")
        for i, (cs, proto) in enumerate(_binds(reg)):
            line = f"{i:<3d} {cs.address()[:20]:<20}"
            line = line.ljust(35) + f"{proto[:20]:<20}"
            line = line.ljust(57) + str(cs.queries)
            rt.show(line + "\n")
    rt.fn("showBinds", show_binds, no_side_effect=True)
    rt.fn("getBindCount", lambda *a: len(_binds(reg)), no_side_effect=True)

    def get_bind(n: Any) -> Any:
        binds = _binds(reg)
        i = int(n)
        return BindHandle(binds[i][0]) if 0 <= i < len(binds) else None
    rt.fn("getBind", get_bind, no_side_effect=True)


class BindHandle:
    """dnsdist's ClientState as getBind() hands it to Lua: one listening socket."""

    def __init__(self, state: ClientState) -> None:
        self._state = state

    def toString(self, *a: Any) -> str:
        return self._state.address()

    tostring = toString

    def getEffectiveTLSProvider(self, *a: Any) -> str:
        """The TLS library serving this socket: OpenSSL for DoT and DoH (pydist's TLS, and
        dnsdist 1.7.3's build has no GnuTLS: provider="gnutls" gets OpenSSL too), "" for
        plain DNS."""
        return "openssl" if self._state.decl.kind in ("tls", "doh") else ""

    @property
    def muted(self) -> bool:
        return False

    def console_str(self) -> str:
        """What the console prints for `getBind(0)`."""
        return self._state.console_str()


def _binds(reg: Any) -> list[tuple[Any, str]]:
    """One entry per socket, UDP then TCP, as dnsdist's g_frontends lists them."""
    suffix = {"plain": "", "tls": " (DNS over TLS)", "doh": " (DNS over HTTPS)",
              "dnscrypt": " (DNSCrypt)"}
    out = []
    for f in reg.frontends:
        if f.udp and f.kind in ("plain", "dnscrypt"):
            out.append((f.udp_state, "UDP" + suffix[f.kind]))
        if f.tcp:
            label = suffix[f.kind]
            if f.kind == "doh" and f.tls is None:
                label = " (DNS over HTTP)"
            out.append((f.tcp_state, "TCP" + label))
    return out
