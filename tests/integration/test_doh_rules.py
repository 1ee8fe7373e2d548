"""Rules on DoH queries side by side with dnsdist 1.7.3: HTTPPathRule, HTTPPathRegexRule,
HTTPHeaderRule, HTTPStatusAction (error and redirect), dq:getProtocol()/getHTTP*() and
dq:setHTTPResponse() from Lua and their FFI forms, a drop (403), self-answered rcodes (their OPT RR kept), the
responses map, and the counters those leave."""
from __future__ import annotations

import re

import pytest

from tests.conftest import Starter, available_impls
from tests.helpers.doh import b64, client, do, query_wire
from tests.helpers.pydist_proc import run_cli

pytestmark = pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")
KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
addDOHLocal("127.0.0.1:{portdoh}", nil, nil, {"/", "/dns-query"},
            {customResponseHeaders={["x-a"]="b"}})
newServer({address="{backend}"})
pc = newPacketCache(1000)
getPool(""):setCache(pc)
addAction("lua.example.", LuaAction(function(dq)
  local h = dq:getHTTPHeaders()
  io.stderr:write("seen " .. dq:getProtocol() .. "|" .. dq:getHTTPPath() .. "|"
    .. dq:getHTTPQueryString() .. "|" .. dq:getHTTPHost() .. "|" .. dq:getHTTPScheme() .. "|"
    .. tostring(h["x-foo"]) .. "|" .. tostring(h["host"]) .. "\\n")
  return DNSAction.None, "" end))
addAction(HTTPPathRule("/dns-query"), SetTagAction("p", "1"))
addAction(HTTPHeaderRule("X-Test", "^ab"), RCodeAction(DNSRCode.NXDOMAIN))
addAction(HTTPPathRegexRule("^/DNS"), SetTagAction("r", "1"))
addAction("drop.example.", DropAction())
addAction("refused.example.", RCodeAction(DNSRCode.REFUSED))
addAction("teapot.example.", HTTPStatusAction(418, "teapot body", "text/x-tea"))
addAction("redir.example.", HTTPStatusAction(307, "https://example.org/x"))
addAction("setresp.example.", LuaAction(function(dq)
  dq:setHTTPResponse(200, "hello", "text/x-hello") return DNSAction.ServFail, "" end))
local ffi = require("ffi")
addAction("ffi.example.", LuaFFIAction(function(dq)
  local body = ffi.string(ffi.C.dnsdist_ffi_dnsquestion_get_http_path(dq)) .. "|"
    .. ffi.string(ffi.C.dnsdist_ffi_dnsquestion_get_http_scheme(dq))
  ffi.C.dnsdist_ffi_dnsquestion_set_http_response(dq, 200, body, #body, "text/x-ffi")
  return DNSAction.ServFail
end))
getDOHFrontend(0):setResponsesMap({newDOHResponseMapEntry("^/$", 307, "https://welcome.test"),
  newDOHResponseMapEntry("^/teapot", 418, "short and stout", {["x-map"]="1"})})
""".replace("KEY", KEY)
NAMES = ["drop", "refused", "teapot", "redir", "setresp", "hdr", "hdr2", "lua", "plain", "ffi"]


def test_http_rules_and_actions_match_dnsdist(start_proc: Starter, responder) -> None:
    seen = {}
    for impl in available_impls():
        proc = start_proc(impl, CONF, {"backend": responder.address})
        port = proc.addr("portdoh")[1]
        out = {}
        with client(False) as c:
            base = f"http://127.0.0.1:{port}"
            for name in NAMES:
                headers = {"X-Test": "abc" if name == "hdr" else "xabc", "X-Foo": "Bar"}
                out[name] = do(c, base, "GET", f"/dns-query?x=y&dns="
                               f"{b64(query_wire(name + '.example.'))}", None, headers).summary()
            for path in ("/", "/teapot", "/elsewhere"):
                out[path] = do(c, base, "GET", path).summary()
        proc.wait_for(r"^seen ")
        lua = [ln.replace(str(port), "PORT") for ln in proc.output.splitlines()
               if ln.startswith("seen ")]
        rules = run_cli(impl, ["-C", str(proc.conf), "-e", "showRules()"]).stdout
        codes = run_cli(impl, ["-C", str(proc.conf), "-e", "showDOHResponseCodes()"]).stdout
        stats = run_cli(impl, ["-C", str(proc.conf), "-e", "dumpStats()"]).stdout
        wanted = ("self-answered", "rule-drop", "rule-nxdomain", "rule-refused",
                  "rule-servfail", "frontend-nxdomain", "frontend-servfail", "queries")
        counters = {k: v for k, v in re.findall(r"([a-z-]+)\s+(\d+)", stats) if k in wanted}
        seen[impl] = (out, lua, rules, codes.replace(str(port), "PORT"), counters)
    py, dd = seen["pydist"], seen["dnsdist"]
    for key, summary in dd[0].items():
        assert py[0][key] == summary, key
    assert dd[0]["teapot"][0] == 418 and dd[0]["drop"][0] == 403 and dd[0]["/"][0] == 307
    assert b"/dns-query|http" in repr(dd[0]["ffi"]).encode()   # the FFI HTTP accessors
    assert py[1] == dd[1] == ["seen DNS over HTTPS|/dns-query|?x=y&dns="
                              f"{b64(query_wire('lua.example.'))}|127.0.0.1:PORT|http|Bar|nil"]
    assert py[2] == dd[2] and "http[X-Test] ~ ^ab" in dd[2]
    assert py[3] == dd[3]
    assert py[4] == dd[4] and dd[4]["self-answered"] != "0"


ACL_CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
setACL({"192.0.2.0/24"})
addDOHLocal("127.0.0.1:{portxff}", nil, nil, "/dns-query", {trustForwardedForHeader=true})
addDOHLocal("127.0.0.1:{portdoh}")
newServer({address="{backend}"})
addAction(makeRule("192.0.2.7/32"), RCodeAction(DNSRCode.REFUSED))
""".replace("KEY", KEY)


def test_acl_and_forwarded_for_match_dnsdist(start_proc: Starter, responder) -> None:
    """The ACL answers 403; with trustForwardedForHeader the right-most X-Forwarded-For
    address (a port allowed) is the client for the ACL and the rules, garbage is ignored."""
    forwarded = ["", "192.0.2.5", "10.0.0.1, 192.0.2.7", "192.0.2.7:5353", "garbage"]
    seen = {}
    for impl in available_impls():
        proc = start_proc(impl, ACL_CONF, {"backend": responder.address})
        out = []
        with client(False) as c:
            path = f"/dns-query?dns={b64(query_wire('acl.example.'))}"
            for value in forwarded:
                headers = {"X-Forwarded-For": value} if value else None
                out.append(do(c, f"http://127.0.0.1:{proc.addr('portxff')[1]}", "GET", path,
                              None, headers).summary())
            out.append(do(c, f"http://127.0.0.1:{proc.addr('portdoh')[1]}", "GET", path,
                          None, {"X-Forwarded-For": "192.0.2.5"}).summary())
        stats = run_cli(impl, ["-C", str(proc.conf), "-e", "dumpStats()"]).stdout
        drops = re.search(r"acl-drops\s+(\d+)", stats)
        seen[impl] = (out, drops.group(1) if drops else None)
    assert seen["pydist"] == seen["dnsdist"]
    statuses = [s[0] for s in seen["dnsdist"][0]]
    assert statuses == [403, 200, 200, 200, 403, 403] and seen["dnsdist"][1] == "3"
