"""DNS over HTTPS from Lua: addDOHLocal, getDOHFrontend(n) and its TLS methods,
getDOHFrontendCount, showDOHFrontends, showDOHResponseCodes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from luaapi.bindings.misc import runtime_refused
from luaapi.bindings.tls import METHODS as TLS_METHODS
from luaapi.bindings.tls import TLSFrontendHandle, _files, _method
from luaapi.convert import (
    as_int,
    as_str,
    is_table,
    str_or_list,
    table_to_dict,
    table_to_list,
)
from luaapi.errors import DnsdistError, LuaArgError, PdnsError
from pydist.dns.netmask import AddressError, parse_address
from pydist.registry import FrontendDecl
from pydist.tls.names import TLSConfigError

if TYPE_CHECKING:   # the DoH frontend loads only when a config declares a map entry
    from pydist.frontend.doh import ResponseMapEntry


def doh_decls(reg: Any) -> list[FrontendDecl]:
    return [f for f in reg.frontends if f.kind == "doh"]


class DOHFrontendHandle(TLSFrontendHandle):
    """getDOHFrontend(n): the TLS methods (no-ops over plain HTTP) and setResponsesMap."""

    def loadNewCertificatesAndKeys(self, certs: Any = None, keys: Any = None, *a: Any) -> None:
        if self.decl.tls is not None:
            super().loadNewCertificatesAndKeys(certs, keys)

    def reloadCertificates(self, *a: Any) -> None:
        if self.decl.tls is not None:
            super().reloadCertificates()

    def rotateTicketsKey(self, *a: Any) -> None:
        if self.decl.tls is not None:
            super().rotateTicketsKey()

    def loadTicketsKeys(self, path: Any = None, *a: Any) -> None:
        if self.decl.tls is not None:
            super().loadTicketsKeys(path)

    def setResponsesMap(self, entries: Any = None, *a: Any) -> None:
        """Paths answered from the map (redirects, a welcome page) before any DNS parsing."""
        items = table_to_list(entries) if is_table(entries) else []
        self.decl.doh.responses_map = [e.entry for e in items if isinstance(e, MapEntryHandle)]


class MapEntryHandle:
    """What newDOHResponseMapEntry returns."""

    def __init__(self, entry: ResponseMapEntry) -> None:
        self.entry = entry


METHODS = TLS_METHODS + ("setResponsesMap",)


def doh_lua_object(rt: Any, handle: DOHFrontendHandle) -> Any:
    t = rt.lua.table()
    for name in METHODS:
        t[name] = rt.wrap(_method(getattr(handle, name)))
    return t


def register(rt: Any) -> None:
    reg = rt.registry

    def add_doh_local(addr: Any = None, certs: Any = None, keys: Any = None, urls: Any = None,
                      opts: Any = None, *rest: Any) -> None:
        if runtime_refused(rt, "addDOHLocal"):
            return
        if addr is None:
            raise LuaArgError("This function requires at least 1 parameter(s)")
        certs_l = _files(certs) if certs is not None and certs != "" else []
        keys_l = _files(keys) if keys is not None and keys != "" else []
        plain = not certs_l
        try:
            host, port = parse_address(as_str(addr), 80 if plain else 443)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        options = {k: v for k, v in table_to_dict(opts).items() if isinstance(k, str)}
        if is_table(options.get("customResponseHeaders")):
            options["customResponseHeaders"] = {
                str(k): str(v) for k, v in table_to_dict(options["customResponseHeaders"]).items()}
        if is_table(options.get("ocspResponses")):      # as addTLSLocal's: a list of files
            options["ocspResponses"] = _files(options["ocspResponses"])
        url_list = ["/dns-query"] if urls is None else str_or_list(urls, "std::string")
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if plain:
            if reg.mode != "client":
                rt.log(f"No certificate provided for DoH endpoint {shown}, running in DNS over "
                       "HTTP mode instead of DNS over HTTPS")
            tls = None
        else:
            if len(certs_l) != len(keys_l):
                rt.log("Error, mismatching number of certificates and keys in call to "
                       "addDOHLocal()!")
                return
            from pydist.tls.frontend_context import FrontendTLS, min_version
            try:
                min_version(str(options.get("minTLSVersion") or "tls1.0"))
                tls = FrontendTLS(certs_l, keys_l, options, reg.log, alpn=("h2", "http/1.1"))
            except TLSConfigError as e:
                raise DnsdistError(str(e)) from None
        from pydist.frontend.doh import DOHFrontend
        decl = FrontendDecl(host=host, port=port, udp=False, tcp=True, tls=tls, kind="doh",
                            options=options)
        decl.doh = DOHFrontend(url_list, options, tls)
        if tls is not None:
            tls.share_counters(decl.tcp_state.tcp_counters)
        reg.frontends.append(decl)
    rt.fn("addDOHLocal", add_doh_local)

    def get_frontend(n: Any = None, *a: Any) -> Any:
        decls = doh_decls(reg)
        i = int(n) if isinstance(n, (int, float)) else -1
        if 0 <= i < len(decls):
            return doh_lua_object(rt, DOHFrontendHandle(decls[i]))
        reg.log(f"Error: trying to get DOH frontend with index {i}u but we only have "
                f"{len(decls)}u frontend(s)")
        return None
    rt.fn("getDOHFrontend", get_frontend)

    def map_entry(regex: Any = None, status: Any = None, content: Any = None,
                  headers: Any = None, *a: Any) -> MapEntryHandle:
        if content is None:
            raise LuaArgError("This function requires at least 3 parameter(s)")
        hdrs = None
        if is_table(headers):
            hdrs = [(str(k).lower(), str(v)) for k, v in
                    sorted(table_to_dict(headers).items(), key=lambda kv: str(kv[0]))]
        from pydist.frontend.doh import ResponseMapEntry
        return MapEntryHandle(ResponseMapEntry(as_str(regex), as_int(status),
                                               as_str(content).encode("latin-1"), hdrs))
    rt.fn("newDOHResponseMapEntry", map_entry)
    rt.fn("getDOHFrontendCount", lambda *a: len(doh_decls(reg)), no_side_effect=True)
    rt.fn("showDOHFrontends", lambda *a: rt.show(frontends_table(doh_decls(reg))),
          no_side_effect=True)
    rt.fn("showDOHResponseCodes", lambda *a: rt.show(response_codes_table(doh_decls(reg))),
          no_side_effect=True)


def _row(cells: list[Any]) -> str:
    return f"{cells[0]!s:<3} {cells[1]!s:<20} " + " ".join(f"{c!s:<15}" for c in cells[2:])


def frontends_table(decls: list[FrontendDecl]) -> str:
    """showDOHFrontends(), dnsdist 1.7.3's columns (next rotation as a Unix time)."""
    lines = [_row(["#", "Address", "HTTP", "HTTP/1", "HTTP/2", "GET", "POST", "Bad", "Errors",
                   "Redirects", "Valid", "# ticket keys", "Rotation delay", "Next rotation"])]
    for i, d in enumerate(decls):
        c, tls = d.doh.counters, d.tls
        keys = len(tls.ring) if tls is not None and tls.ctx is not None else 0
        delay = int(tls.rotation_delay()) if tls is not None else 43200
        nxt = int(tls.next_rotation) if tls is not None and tls.ctx is not None else 0
        lines.append(_row([i, d.address(), c.http_connects, c.version_queries[1],
                           c.version_queries[2], c.get_queries, c.post_queries, c.bad_requests,
                           c.error_responses, c.redirect_responses, c.valid_responses, keys,
                           delay, nxt]))
    return "\n".join(lines) + "\n"


def response_codes_table(decls: list[FrontendDecl]) -> str:
    """showDOHResponseCodes(): one table per HTTP version."""
    out = []
    for version in (1, 2):
        out.append(f"\n- HTTP/{version}:\n")
        out.append(_row(["#", "Address", "200", "400", "403", "500", "502", "Others"]))
        for i, d in enumerate(decls):
            s = d.doh.counters.status[version]
            out.append(_row([i, d.address(), s["200"], s["400"], s["403"], s["500"], s["502"],
                             s["other"]]))
    return "\n".join(out) + "\n"
