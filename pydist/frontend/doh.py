"""DoH frontend (addDOHLocal): one HTTP request in, one DNS query into the packet path, and the
HTTP answer dnsdist 1.7.3 gives (its status codes, texts, headers and counters).

The HTTP framing (HTTP/1.1 over h11, HTTP/2 over h2) lives in doh_http.py; this module only sees
`DOHRequest`s. As in dnsdist, a query without EDNS gets an OPT RR (4096) before the rules, goes
to the backend over UDP and is cached under the UDP key; the OPT is taken off the answer.
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import time
from collections.abc import Callable
from typing import Any

from pydist.dns.reader import locate_opt
from pydist.dns.netmask import AddressError, parse_address
from pydist.dns.ttl import min_ttl
from pydist.dns.wire import WireError, parse_question
from pydist.verdict import ANSWER, DEFERRED_KIND, FORWARD, NO_DOWNSTREAM_KIND, QueryOrigin

OPT_4096 = b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
MAX_BODY = 65535
STATUS_KEYS = ("200", "400", "403", "500", "502", "other")
REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 303: "See Other",
           307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 418: "I'm a teapot",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
TEXT_PLAIN = "text/plain; charset=utf-8"
# (reason, body) of the errors dnsdist sends without its custom headers
DEFAULT_ERRORS = {400: "invalid DNS query", 403: "dns query not allowed",
                  502: "no downstream server available", 500: "Internal Server Error"}


_date_cache: list = [0, ""]


def http_date() -> str:
    """The Date header, formatted once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, email.utils.formatdate(now, usegmt=True)
    return _date_cache[1]


class DOHCounters:
    """dnsdist's DOHFrontend counters (showDOHFrontends, showDOHResponseCodes, /metrics)."""

    def __init__(self) -> None:
        self.http_connects = 0
        self.get_queries = self.post_queries = self.bad_requests = 0
        self.error_responses = self.redirect_responses = self.valid_responses = 0
        self.version_queries = {1: 0, 2: 0}
        self.status = {1: dict.fromkeys(STATUS_KEYS, 0), 2: dict.fromkeys(STATUS_KEYS, 0)}

    def count_status(self, version: int, status: int) -> None:
        key = str(status) if str(status) in STATUS_KEYS else "other"
        self.status[version][key] += 1


class DOHFrontend:
    """One addDOHLocal listener's settings and counters."""

    def __init__(self, urls: list[str], options: dict[str, Any], tls: Any = None) -> None:
        self.urls = urls or ["/dns-query"]
        self.options = options
        self.tls = tls
        self.counters = DOHCounters()
        headers = options.get("customResponseHeaders") or {}
        # dnsdist's std::map order (by the names as written), names sent lowercase as h2o does
        self.custom_headers = [(str(k).lower(), str(v)) for k, v in
                               sorted(headers.items(), key=lambda kv: str(kv[0]))] \
            if isinstance(headers, dict) else []
        self.server_tokens = str(options.get("serverTokens", "h2o/dnsdist"))
        self.cache_control = options.get("sendCacheControlHeaders", True) is not False
        self.exact_paths = options.get("exactPathMatching", True) is not False
        self.idle_timeout = float(options.get("idleTimeout") or 30)
        self.trust_xff = bool(options.get("trustForwardedForHeader", False))
        self.responses_map: list[ResponseMapEntry] = []

    def route(self, path: str) -> str:
        """'ok', 'h2o' (no handler: h2o's own 404) or 'dnsdist' (exactPathMatching's 404)."""
        bare = path.split("?", 1)[0]
        for url in self.urls:
            if bare == url:
                return "ok"
        for url in self.urls:
            if url.endswith("/") and bare.startswith(url) or bare.startswith(url + "/"):
                return "dnsdist" if self.exact_paths else "ok"
        return "h2o"


class ResponseMapEntry:
    """newDOHResponseMapEntry(regex, status, content[, headers]): answered without a query."""

    def __init__(self, pattern: str, status: int, content: bytes,
                 headers: list[tuple[str, str]] | None = None) -> None:
        import re

        from pydist.rules.selectors import posix_to_python
        self.pattern, self.status, self.content, self.headers = pattern, status, content, headers
        self.regex = re.compile(posix_to_python(pattern), re.IGNORECASE)

    def matches(self, path: str) -> bool:
        return self.regex.search(path) is not None


class DOHRequest:
    """One HTTP request as rules see it (dq:getHTTPPath() ...); `send` writes the answer."""

    def __init__(self, method: str, path: str, host: str, scheme: str,
                 headers: list[tuple[str, str]], version: int, body: bytes,
                 peer: Any, send: Callable[[int, str, list[tuple[str, str]], bytes], None]) -> None:
        self.method, self.path, self.host, self.scheme = method, path, host, scheme
        self.headers = headers           # lowercased names, host/authority excluded
        self.version, self.body, self.peer, self.send = version, body, peer, send
        self.edns_added = False
        self.done = False
        self.counted: Callable[[], None] = lambda: None     # the connection's "seen" mark
        # (session reused, TLS version, first request of its connection to reach the handler)
        self.tls_info: tuple[bool, str, bool] | None = None
        self.sni = ""
        self.http_response: tuple[int, bytes, str] | None = None

    def http_path(self) -> str:
        return self.path.split("?", 1)[0]

    def query_string(self) -> str:
        i = self.path.find("?")
        return "" if i < 0 else self.path[i:]

    def header_map(self) -> dict[str, str]:
        return dict(self.headers)


def decode_dns_param(path: str) -> bytes | None:
    """dnsdist's GET: everything after '?dns=' or '&dns=' to the end, base64url, padding
    optional. None when the text is not base64."""
    pos = path.find("?dns=")
    if pos < 0:
        pos = path.find("&dns=")
    if pos < 0:
        return None
    text = path[pos + 5:].replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4 if len(text) % 4 != 1 else 0)
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return None


def strip_opt(resp: bytes) -> bytes:
    """Take off the OPT RR we added (the client sent none)."""
    start, end = locate_opt(resp)
    if start < 0 or end != len(resp):
        return resp
    arcount = ((resp[10] << 8) | resp[11]) - 1
    return resp[:10] + arcount.to_bytes(2, "big") + resp[12:start]


def forwarded_for(req: DOHRequest) -> None:
    """trustForwardedForHeader: the right-most X-Forwarded-For address (a port allowed) is the
    client, for the ACL, rules and logs; one that does not parse leaves the peer as it is."""
    values = [v for n, v in req.headers if n == "x-forwarded-for"]
    if not values:
        return
    text = values[-1].split(",")[-1].strip()
    try:
        host, port = parse_address(text, 0)
    except AddressError:
        return
    req.peer = (host, port)


class DOHReply:
    """One request's answer: a DNS answer (200), a drop (403) or a backend that never answered
    (502), as dnsdist 1.7.3; the sink of the request's query once forwarded."""

    __slots__ = ("handler", "req")

    def __init__(self, handler: DOHHandler, req: DOHRequest) -> None:
        self.handler, self.req = handler, req

    def send(self, resp: bytes | None, generated: bool = False) -> None:
        """`generated`: an answer pydist made (rules, no server), which keeps our added OPT."""
        if resp is None:                # dropped: 403 even with an HTTP answer set
            self.handler.answer(self.req, 403, b"")
            return
        custom = self.req.http_response
        if custom is not None and generated:     # HTTPStatusAction, setHTTPResponse()
            self.handler.answer(self.req, custom[0], custom[1], custom[2])
            return
        if self.req.edns_added and not generated:
            resp = strip_opt(resp)
        if custom is None:
            self.handler.answer(self.req, 200, resp)
        elif custom[0] == 200:  # as 1.7.3: a backend's answer replaces the body set, not the type
            self.handler.answer(self.req, 200, resp, custom[2])
        else:                   # ... and any other status set gives h2o's 500
            self.handler.answer(self.req, 500, b"")

    def act(self, v: Any) -> None:
        """The query step's verdict: the answer (200), forwarded (answered through the sink),
        waited for, no downstream (502) or dropped (403)."""
        kind = v.kind
        if kind == ANSWER:
            self.send(v.data, v.generated)
        elif kind == DEFERRED_KIND:
            v.then(self.act)
        elif kind == NO_DOWNSTREAM_KIND:
            self.timed_out(None)
        elif kind != FORWARD or not self.handler.path.backends.forward(v, self):
            self.send(None)

    # --- the sink (pydist/frontend/sink.py)
    def answer(self, st: Any, resp: bytes, delay_ms: int) -> None:
        self.send(resp)

    def answer_part(self, st: Any, resp: bytes) -> None:
        """Zone transfers are not relayed over DoH."""

    def end(self, st: Any) -> None:
        self.send(None)

    def timed_out(self, st: Any) -> None:
        self.handler.answer(self.req, 502, b"")


class DOHHandler:
    """dnsdist's doh_handler: the checks in its order, then the packet path."""

    def __init__(self, path: Any, fe: Any, doh: DOHFrontend) -> None:
        self.path, self.fe, self.doh = path, fe, doh

    def handle(self, req: DOHRequest) -> None:
        doh, c = self.doh, self.doh.counters
        route = doh.route(req.path)
        if route == "h2o":
            return self._send(req, 404, "File Not Found", b"not found", count=False)
        reg = self.path.reg
        if doh.trust_xff:
            forwarded_for(req)
        host = req.peer[0] if req.peer else ""
        if not reg.acl.match(host):
            reg.stats.acl_drops += 1
            return self._send(req, 403, "Forbidden", b"dns query not allowed because of ACL")
        if doh.tls is not None:
            self._tls_counters(req)
            req.counted()
        if route == "dnsdist":
            return self._send(req, 404, "Not Found",
                              b"there is no endpoint configured for this path")
        for entry in doh.responses_map:
            if entry.matches(req.path):
                return self.answer(req, entry.status, entry.content, map_entry=entry)
        if req.method == "POST":
            c.post_queries += 1
            c.version_queries[req.version] += 1
            return self._dispatch(req, req.body)
        qpos = req.path.find("?")
        if qpos < 0 or len(req.path) - qpos <= 5:
            c.bad_requests += 1
            return self._send(req, 400, "Bad Request", b"Unable to parse the request")
        query = decode_dns_param(req.path)
        if query is None:
            if "?dns=" not in req.path and "&dns=" not in req.path:
                c.bad_requests += 1
                return self._send(req, 400, "Bad Request", b"Unable to find the DNS parameter")
            c.bad_requests += 1
            return self._send(req, 400, "Bad Request", b"Unable to decode BASE64-URL")
        c.get_queries += 1
        c.version_queries[req.version] += 1
        self._dispatch(req, query)

    def _tls_counters(self, req: DOHRequest) -> None:
        """As dnsdist 1.7.3 (observed): the TLS version counted per request that reaches the
        DoH handler, the session (new or resumed) at the first such request of a connection."""
        counters = self.doh.tls.counters
        reused, version, first = req.tls_info or (False, "", False)
        if first:
            counters["tlsResumptions" if reused else "tlsNewSessions"] += 1
        from pydist.tls.frontend_context import version_counter
        counters[version_counter(version)] += 1

    def _dispatch(self, req: DOHRequest, query: bytes) -> None:
        """doh_dispatch_query then processDOHQuery: parse, header checks, the packet path."""
        if len(query) > MAX_BODY:
            return self._send(req, 400, "Bad Request", b"The DNS query could not be parsed")
        try:
            parse_question(query)
        except (WireError, IndexError, ValueError):
            return self._send(req, 400, "Bad Request", b"The DNS query could not be parsed")
        path = self.path
        path.count_query(self.fe)
        if query[10] == 0 and query[11] == 0:
            query = query[:10] + b"\x00\x01" + query[12:] + OPT_4096
            req.edns_added = True
        now = time.time()
        if not path.accept_query(query, req.peer, self.fe, now):    # checkQueryHeaders
            return self.answer(req, 400, b"")
        reply = DOHReply(self, req)
        reply.act(path.query_step(query, req.peer, None, self.fe.transport, self.fe, now,
                                  QueryOrigin(req.sni, req, None)))

    # --- answers
    def answer(self, req: DOHRequest, status: int, body: bytes, ctype: str = "",
               map_entry: ResponseMapEntry | None = None) -> None:
        """dnsdist's handleResponse: a DNS answer, or an error counted as one."""
        if req.done:
            return
        c = self.doh.counters
        custom = self.doh.custom_headers
        if map_entry is not None and map_entry.headers is not None:
            custom = map_entry.headers
        if status == 200:
            c.valid_responses += 1
            headers = list(custom)
            if map_entry is None:       # a responses map entry's body goes without a type
                headers.append(("content-type", ctype or "application/dns-message"))
            if self.doh.cache_control and body:
                ttl = min_ttl(body)
                if ttl is not None:
                    headers.append(("cache-control", f"max-age={ttl}"))
            return self._finish(req, 200, headers, body)
        if 300 <= status < 400:         # h2o_send_redirect: the body is the URL
            c.redirect_responses += 1
            url = body.decode("latin-1")
            page = ('<!DOCTYPE html><TITLE>Moved</TITLE><P>The document has moved '
                    f'<A HREF="{url}">here</A>').encode("latin-1")
            headers = [("location", url), ("content-type", "text/html; charset=utf-8")]
            return self._finish(req, status, headers, page)
        c.error_responses += 1
        if body:
            headers = list(custom) + [("content-type", TEXT_PLAIN)]
            return self._finish(req, status, headers, body)
        text = DEFAULT_ERRORS.get(status, "Internal Server Error")
        if status not in DEFAULT_ERRORS:
            status = 500
        self._finish(req, status, [("content-type", TEXT_PLAIN)], text.encode())

    def _send(self, req: DOHRequest, status: int, reason: str, body: bytes,
              count: bool = True) -> None:
        """An error h2o sends itself (no custom headers)."""
        self._finish(req, status, [("content-type", TEXT_PLAIN)], body, count, reason)

    def _finish(self, req: DOHRequest, status: int, headers: list[tuple[str, str]],
                body: bytes, count: bool = True, reason: str = "") -> None:
        if req.done:
            return
        req.done = True
        if count:
            self.doh.counters.count_status(req.version, status)
        head = [("server", self.doh.server_tokens)] if self.doh.server_tokens else []
        head.append(("date", http_date()))
        req.send(status, reason or REASONS.get(status, "Unknown"), head + headers, body)
