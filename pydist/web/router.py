"""One HTTP request to one response, without I/O: auth, CORS, dnsdist's security headers,
methods and routes (facts §7). The rules, in the order they apply:

1. OPTIONS is always 200 (CORS preflight), no authentication.
2. Authentication by path: /jsonstat and /metrics take the API key or basic auth (or nothing
   with statsRequireAuthentication=false); /api/... takes the API key, and exactly
   /api/v1/servers/localhost takes basic auth too; everything else takes basic auth.
   Failure is 401 with `WWW-Authenticate: basic realm="PowerDNS"`.
3. Routes: GET everywhere; PUT only on .../config/allow-from when the API is writable;
   POST only on pydist's .../pydist/reload, likewise; any other method 405; unknown path 404.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydist.dns.netmask import AddressError, parse_netmask
from pydist.web import api, assets, health, prometheus
from pydist.web.credentials import Credential
from pydist.web.settings import WebSettings

LOCALHOST = "/api/v1/servers/localhost"
RELOAD_PATH = LOCALHOST + "/pydist/reload"     # pydist's own (pydist/reload): POST reloads
STATS_PATHS = ("/jsonstat", "/metrics")
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "deny"),
    ("X-Permitted-Cross-Domain-Policies", "none"), ("X-XSS-Protection", "1; mode=block"),
    ("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'"),
)
JSON, TEXT = "application/json", "text/plain"
UNAUTHORIZED = b"<h1>Unauthorized</h1>"


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]          # lower-case names
    body: bytes = b""
    peer: str = ""
    version: str = "1.1"
    # (id(credential), supplied) -> result, computed off the loop for hashed credentials
    verdicts: dict[tuple[int, str], bool] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    bare: bool = False    # a registerWebHandler() answer: 1.7.3 adds none of its own headers


def header_case(name: str) -> str:
    """Header names as dnsdist's HTTP library writes them: `X-Xss-Protection`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class Router:
    """Holds the registry and web settings; `handle(request)` is the whole web application."""

    def __init__(self, reg: Any, settings: WebSettings,
                 log: Callable[[str], None] | None = None) -> None:
        self.reg = reg
        self.settings = settings
        self.log = log or (lambda line: None)
        self.top: Any = None        # the server's TopOffenders, when it keeps one

    # --- authentication
    @staticmethod
    def _basic_password(req: Request) -> str | None:
        """The password of a well-formed `Basic` header: user:password, both non-empty."""
        scheme, _, encoded = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return None
        parts = decoded.split(":")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            return None
        return parts[1]

    def slow_checks(self, req: Request) -> list[tuple[Credential, str]]:
        """Hashed-credential checks this request needs (scrypt): the server runs them in a
        worker thread first, so a stream of wrong passwords never stalls the DNS loop."""
        out = []
        key, supplied = self.settings.api_key, req.headers.get("x-api-key")
        if key is not None and supplied is not None and key.is_slow(supplied):
            out.append((key, supplied))
        pw, given = self.settings.password, self._basic_password(req)
        if pw is not None and given is not None and pw.is_slow(given):
            out.append((pw, given))
        return out

    @staticmethod
    def _check(cred: Credential, supplied: str, req: Request) -> bool:
        known = req.verdicts.get((id(cred), supplied))
        if known is not None:
            return cred.remember(supplied, known)
        return cred.verify(supplied)

    def _api_key_ok(self, req: Request) -> bool:
        key = self.settings.api_key
        supplied = req.headers.get("x-api-key")
        return (key is not None and not key.empty and supplied is not None
                and self._check(key, supplied, req))

    def _basic_ok(self, req: Request) -> bool:
        given = self._basic_password(req)
        if given is None:
            return False
        pw = self.settings.password
        return pw is None or pw.empty or self._check(pw, given, req)

    def authorized(self, req: Request) -> bool:
        path = req.path
        if path in STATS_PATHS:
            return (not self.settings.stats_require_auth or self._api_key_ok(req)
                    or self._basic_ok(req))
        if path.startswith("/api/"):
            return self._api_key_ok(req) or (path == LOCALHOST and self._basic_ok(req))
        if path in health.HEALTH_PATHS and path not in self.settings.handlers:
            return self.settings.health_public or self._api_key_ok(req) or self._basic_ok(req)
        return self._basic_ok(req)

    def _logs_failure(self, req: Request) -> bool:
        """As observed on 1.7.3: the failure is logged for its own endpoints, unless the
        client presented a wrong API key or a well-formed basic header with a wrong password."""
        path = req.path
        if path not in ("/", "/jsonstat", "/metrics") and not path.startswith("/api/"):
            return False
        if "x-api-key" in req.headers and not self._api_key_ok(req):
            return False
        return self._basic_password(req) is None or self._basic_ok(req)

    # --- the application
    def handle(self, req: Request) -> Response:
        if req.method == "OPTIONS":
            resp = Response(200)
            self._cors(req, resp, preflight=True)
        elif not self.authorized(req):
            if self._logs_failure(req):
                self.log(f'HTTP Request "{req.path}" from {req.peer}: Web Authentication failed')
            resp = Response(401, [("WWW-Authenticate", 'basic realm="PowerDNS"')], UNAUTHORIZED)
        else:
            resp = self._route(req)
            if resp.status == 200:
                self._cors(req, resp, preflight=False)
        if not resp.bare:
            resp.headers = self._final_headers(resp.headers)
        return resp

    def _cors(self, req: Request, resp: Response, preflight: bool) -> None:
        origin = req.headers.get("origin")
        if origin is None:
            return
        resp.headers.append(("Access-Control-Allow-Origin", origin))
        if preflight:
            writable = self.settings.api_writable and req.path == LOCALHOST + "/config/allow-from"
            resp.headers.append(("Access-Control-Allow-Methods", "GET, PUT" if writable else "GET"))
            resp.headers.append(("Access-Control-Allow-Headers", "Authorization, X-API-Key"))
        elif req.path in STATS_PATHS or req.path == LOCALHOST:
            resp.headers.append(("Access-Control-Allow-Credentials", "true"))

    def _final_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        custom = self.settings.custom_headers or {}
        custom_lower = {k.lower() for k in custom}
        out = [(k, v) for k, v in headers]
        out += [(k, v) for k, v in SECURITY_HEADERS if k.lower() not in custom_lower]
        out += [(k, v) for k, v in custom.items() if v]
        out.append(("Connection", "close"))
        return sorted(((header_case(k), v) for k, v in out), key=lambda kv: kv[0].lower())

    def _route(self, req: Request) -> Response:
        path = req.path
        if path == LOCALHOST + "/config/allow-from":
            if req.method == "PUT" and self.settings.api_writable:
                return self._put_allow_from(req)
            return self._get(req, lambda: api.allow_from(self.reg))
        if path == "/metrics":
            return self._get(req, lambda: prometheus.render(self.reg, self.top), TEXT)
        if path == "/jsonstat":
            return self._get(req, lambda: api.jsonstat(self.reg, req.query.get("command", "")))
        if path == LOCALHOST:
            return self._get(req, lambda: api.localhost(self.reg))
        if path == LOCALHOST + "/statistics":
            return self._get(req, lambda: api.statistics(self.reg))
        if path == LOCALHOST + "/config":
            return self._get(req, lambda: api.config(self.reg))
        if path == LOCALHOST + "/pool":
            return self._pool(req)
        if path == RELOAD_PATH:
            return self._reload(req)
        handler = self.settings.handlers.get(path)
        if handler is not None:
            return self._custom(req, handler)
        if path in health.HEALTH_PATHS:
            return self._health(req)
        if path.startswith("/api/"):
            return Response(404)
        asset = assets.lookup(path)
        if asset is None:
            return Response(404)
        return self._get(req, lambda: asset[1], asset[0])

    def _get(self, req: Request, produce: Callable[[], Any], ctype: str = JSON) -> Response:
        if req.method != "GET":
            return Response(405)
        value = produce()
        if value is None:
            return Response(404)
        if isinstance(value, str):
            body = value.encode("utf-8", "replace")
        elif isinstance(value, bytes):
            body = value
        else:
            body = api.dumps(value).encode("utf-8", "replace")
        return Response(200, [("Content-Type", ctype)], body)

    def _health(self, req: Request) -> Response:
        if req.method != "GET":
            return Response(405)
        status, text = health.answer(self.reg, req.path)
        return Response(status, [("Content-Type", TEXT), ("Cache-Control", "no-store")],
                        text.encode())

    def _pool(self, req: Request) -> Response:
        if req.method != "GET":
            return Response(405)
        name = req.query.get("name")
        if name is None:
            return Response(400)
        return self._get(req, lambda: api.pool(self.reg, name))

    def _reload(self, req: Request) -> Response:
        """pydist's own endpoint (pydist/reload): POST reloads the config file, which takes
        the API key (as every /api/ path) and setAPIWritable(true); GET shows the last
        reload's result (404 before the first)."""
        control = self.reg.reload_control
        if control is None:
            return Response(404)
        if req.method == "POST":
            if not self.settings.api_writable:
                return Response(403)
            result = control.reload()
            body = api.dumps(result.as_json()).encode()
            return Response(200 if result.ok else 422, [("Content-Type", JSON)], body)
        last = control.last()
        return self._get(req, lambda: None if last is None else last.as_json())

    def _put_allow_from(self, req: Request) -> Response:
        """PUT {"value": [masks]}: replace the ACL; persist `setACL({...})` in the API dir."""
        try:
            doc = json.loads(req.body.decode("utf-8"))
            masks = [str(m) for m in doc["value"]]
            for m in masks:
                parse_netmask(m)
        except (ValueError, KeyError, TypeError, AddressError, UnicodeDecodeError):
            return Response(400)
        self.reg.acl.clear()
        for m in masks:
            self.reg.acl.add(m)
        current = self.reg.acl.to_strings()
        self.log("Updating the ACL via the API to " + ", ".join(current))
        directory = self.settings.api_config_dir
        if directory:
            text = ("-- Generated by the REST API, DO NOT EDIT\n"
                    "setACL({" + ", ".join(json.dumps(m) for m in current) + "})\n")
            try:
                with open(os.path.join(directory, "acl.conf"), "w") as f:
                    f.write(text)
            except OSError as e:
                self.log(f"Error writing the API configuration to {directory}: {e.strerror}")
                return Response(500)
        return self._get(Request("GET", req.target, req.headers), lambda: api.allow_from(self.reg))

    def _custom(self, req: Request, handler: Callable) -> Response:
        """registerWebHandler(): the Lua function fills dnsdist's response object."""
        request = {"path": req.path, "method": req.method, "version": req.version,
                   "body": req.body.decode("latin-1"), "getvars": req.query, "postvars": {},
                   "headers": dict(req.headers)}
        try:
            status, headers, body = handler(request)
        except Exception as e:  # a broken handler is a 500, never a dead web server
            self.log(f"Error while processing HTTP request for {req.path}: {e}")
            return Response(500)
        hdrs = [(str(k), str(v)) for k, v in (headers or {}).items()]
        return Response(int(status), hdrs, str(body or "").encode("latin-1", "replace"), bare=True)
