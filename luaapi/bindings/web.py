"""The web server from Lua (facts §7): webserver, setWebserverConfig, hashPassword,
showWebserverConfig, setAPIWritable, registerWebHandler. Bindings only fill registry.web
(pydist.web.WebSettings); the engine serves it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from luaapi.convert import as_bool, as_int, as_str, fail, is_function, is_table, table_to_dict
from luaapi.errors import DnsdistError, LuaArgError
from pydist.dns.netmask import AddressError, NetmaskGroup, format_address, parse_address
from pydist.registry import RELOAD
from pydist.web.credentials import Credential, WorkFactorError, hash_password, is_hashed

_PLAIN_PW = ("Passing a plain-text password via the 'password' parameter to "
             "'setWebserverConfig()' is not advised, please consider generating a hashed one "
             "using 'hashPassword()' instead.")
_PLAIN_KEY = ("Passing a plain-text API key via the 'apiKey' parameter to "
              "'setWebserverConfig()' is not advised, please consider generating a hashed one "
              "using 'hashPassword()' instead.")
_DEPRECATED = ("Passing additional parameters to 'webserver()' is deprecated, please use "
               "'setWebserverConfig()' instead.")
_DEPRECATED_PW = ("Passing a plain-text password to 'webserver()' is deprecated, please use "
                  "'setWebserverConfig()' instead and consider generating a hashed password "
                  "using 'hashPassword()'.")


class WebRequest:
    """dnsdist's WebRequest in a registerWebHandler() callback (read it from Lua)."""

    LUA_FIELDS = ("path", "method", "body", "version", "getvars", "postvars", "headers")

    def __init__(self, rt: Any, req: dict[str, Any]) -> None:
        self.path, self.method, self.body = req["path"], req["method"], req["body"]
        self.version = int(str(req["version"]).replace(".", "") or 11)
        self.getvars = rt.lua.table_from(req["getvars"])
        self.postvars = rt.lua.table_from(req["postvars"])
        self.headers = rt.lua.table_from(req["headers"])


class WebResponse:
    """dnsdist's WebResponse: the handler sets status, body and headers."""

    LUA_FIELDS = ("status", "body", "headers")

    def __init__(self, rt: Any) -> None:
        self.status = 200
        self.body = ""
        self.headers = rt.lua.table()


def lua_web_handler(rt: Any, func: Any) -> Callable[[dict[str, Any]], tuple]:
    """A plain Python callable for the engine: request dict in, (status, headers, body) out."""
    def handle(req: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        resp = WebResponse(rt)
        func(WebRequest(rt, req), resp)
        headers = {as_str(k): as_str(v) for k, v in table_to_dict(resp.headers).items()}
        return int(resp.status), headers, as_str(resp.body) if resp.body is not None else ""
    return handle


def _acl(text: str) -> NetmaskGroup:
    group = NetmaskGroup()
    try:
        for item in text.split(","):
            if item.strip():
                group.add(item.strip())
    except AddressError as e:
        raise DnsdistError(str(e)) from None
    return group


def register(rt: Any) -> None:
    reg = rt.registry
    web = reg.web

    def credential(value: Any, warning: str) -> Credential:
        text = as_str(value)
        if not is_hashed(text):     # an empty one too, as dnsdist 1.7.3 warns
            rt.log(warning)
        return Credential(text, web.hash_plaintext)

    def webserver(addr: Any = None, password: Any = None, api_key: Any = None,
                  headers: Any = None, acl: Any = None, *extra: Any) -> None:
        if extra:
            raise LuaArgError("This function requires at most 5 parameter(s)")
        text = as_str(addr)
        try:
            host, port = parse_address(text, 0)
        except AddressError as e:
            raise DnsdistError(f"Error parsing the bind address for the webserver: {e}") from None
        web.address = (host, port)
        reloading = reg.mode == RELOAD      # settings recorded; the running web socket kept
        if not reg.serving and not reloading:
            return  # as 1.7.3: check-config and client modes neither bind nor warn
        if any(v is not None for v in (password, api_key, headers, acl)):
            rt.log(_DEPRECATED)
            if password is not None:
                pw = as_str(password)
                if pw and not is_hashed(pw):
                    rt.log(_DEPRECATED_PW)
                web.password = Credential(pw, web.hash_plaintext)
            if api_key is not None:
                web.api_key = Credential(as_str(api_key), web.hash_plaintext)
            if headers is not None:
                web.custom_headers = _headers(headers)
            if acl is not None:
                web.acl = _acl(as_str(acl))
        if reloading:
            return
        if web.sock is not None:
            web.sock.close()
            web.sock = None
        where = format_address(host, port)
        from pydist.web.server import bind_web_socket   # h11 and the router: web configs only
        try:
            web.sock = bind_web_socket(host, port)
        except OSError as e:
            rt.log(f"Unable to bind to webserver socket on {where}: binding socket to "
                   f"{where}: {e.strerror}")
            return
        reg.declare_web()
    rt.fn("webserver", webserver)

    def _headers(t: Any) -> dict[str, str]:
        if not is_table(t):
            raise fail(t, "std::map<std::string, std::string>")
        return {as_str(k): as_str(v) for k, v in table_to_dict(t).items()}

    def set_webserver_config(t: Any = None, *a: Any) -> None:
        if not is_table(t):
            raise fail(t, "std::unordered_map<std::string, boost::variant<bool, std::string, "
                          "std::map<std::string, std::string> > >")
        d = {k: v for k, v in table_to_dict(t).items() if isinstance(k, str)}
        if "hashPlaintextCredentials" in d:
            web.hash_plaintext = as_bool(d["hashPlaintextCredentials"])
        if "password" in d:
            web.password = credential(d["password"], _PLAIN_PW)
        if "apiKey" in d:
            web.api_key = credential(d["apiKey"], _PLAIN_KEY)
        if "acl" in d:
            web.acl = _acl(as_str(d["acl"]))
        if "customHeaders" in d:
            web.custom_headers = _headers(d["customHeaders"])
        if "statsRequireAuthentication" in d:
            web.stats_require_auth = as_bool(d["statsRequireAuthentication"])
        if "maxConcurrentConnections" in d:
            web.max_connections = as_int(d["maxConcurrentConnections"])
    rt.fn("setWebserverConfig", set_webserver_config)

    def hash_pw(pw: Any = None, work: Any = None, *a: Any) -> str:
        if pw is None:
            raise LuaArgError("This function requires at least 1 parameter(s)")
        factor = 1024 if work is None else as_int(work, "N5boost8optionalImEE")
        try:
            return hash_password(as_str(pw), factor)
        except WorkFactorError as e:
            raise DnsdistError(str(e)) from None
    rt.fn("hashPassword", hash_pw, no_side_effect=True)

    def set_api_writable(writable: Any, directory: Any = None, *a: Any) -> None:
        web.api_writable = as_bool(writable)
        if directory is not None:
            web.api_config_dir = as_str(directory)
    rt.fn("setAPIWritable", set_api_writable)

    def register_web_handler(path: Any, func: Any, *a: Any) -> None:
        if not is_function(func):
            raise fail(func, "std::function<void (WebRequest const*, WebResponse*)>")
        web.handlers[as_str(path)] = lua_web_handler(rt, func)
    rt.fn("registerWebHandler", register_web_handler)

    rt.fn("showWebserverConfig", lambda *a: rt.show(web.show()), no_side_effect=True)
