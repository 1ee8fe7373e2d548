"""The HTTP answer a DoH query gets when a rule set one, pydist against real dnsdist 1.7.3:
`dnsdist_ffi_dnsquestion_set_http_response` also turns the query into an answer (so the HTTP
answer goes out whatever the action's verdict), a drop still gives 403, and a query that
`dq:setHTTPResponse()` let through to the backend gets the backend's DNS answer under the
content type set (any status but 200: h2o's 500)."""
from __future__ import annotations

from tests.conftest import ResponderFactory, Starter
from tests.helpers.doh import b64, client, do, query_wire
from tests.helpers.pydist_proc import DnsdistProcess
from tests.helpers.sides import assert_same, views_of_both

CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addDOHLocal("127.0.0.1:{portdoh}", nil, nil, {"/dns-query"})
newServer({address="{backend}"})
local ffi = require("ffi")
local function setter(status, body, ctype, verdict)
  return function(dq)
    ffi.C.dnsdist_ffi_dnsquestion_set_http_response(dq, status, body, #body, ctype)
    return verdict
  end
end
addAction("none.test.", LuaFFIAction(setter(200, "hello", "text/x-a", DNSAction.None)))
addAction("nx.test.", LuaFFIAction(setter(200, "hello", "text/x-a", DNSAction.Nxdomain)))
addAction("tea.test.", LuaFFIAction(setter(418, "tea", "text/x-t", DNSAction.ServFail)))
addAction("nul.test.", LuaFFIAction(setter(200, "a\\0b", "", DNSAction.ServFail)))
addAction("drop.test.", LuaFFIAction(setter(200, "dropped", "text/x-d", DNSAction.Drop)))
addAction("refused.test.", LuaFFIAction(setter(200, "ref", "text/x-r", DNSAction.Refused)))
addAction("hm.test.", LuaFFIAction(function(dq)
  ffi.C.dnsdist_ffi_dnsquestion_set_http_response(dq, 200, "hm", 2, "text/x-h")
  ffi.C.dnsdist_ffi_dnsquestion_set_rcode(dq, 3)
  return DNSAction.HeaderModify end))
addAction("cont.test.", LuaFFIAction(setter(200, "cont", "text/x-c", DNSAction.None)))
addAction("cont.test.", RCodeAction(DNSRCode.NXDOMAIN))
addAction("pt.test.", LuaFFIPerThreadAction([[
  local ffi = require("ffi")
  return function(dq)
    ffi.C.dnsdist_ffi_dnsquestion_set_http_response(dq, 200, "pt", 2, "text/x-pt")
    return DNSAction.Nxdomain
  end]]))
local function lua_setter(status, body, ctype, verdict)
  return function(dq) dq:setHTTPResponse(status, body, ctype) return verdict end
end
addAction("lua.test.", LuaAction(lua_setter(200, "lua", "text/x-l", DNSAction.None)))
addAction("lua418.test.", LuaAction(lua_setter(418, "lua", "text/x-l", DNSAction.None)))
addAction("luanoct.test.", LuaAction(lua_setter(200, "lua", "", DNSAction.None)))
addAction("lua404.test.", LuaAction(lua_setter(404, "", "", DNSAction.None)))
addAction("luanx.test.", LuaAction(lua_setter(200, "lua", "text/x-l", DNSAction.Nxdomain)))
"""
NAMES = ("none", "nx", "tea", "nul", "drop", "refused", "hm", "cont", "pt", "lua", "luanx",
         "lua418", "luanoct", "lua404")


def test_http_response_set_by_rules_as_dnsdist(start_proc: Starter,
                                               responder_factory: ResponderFactory) -> None:
    backend = responder_factory()

    def answers(proc: DnsdistProcess) -> list:
        base = f"http://127.0.0.1:{proc.addr('portdoh')[1]}"
        with client(False) as c:
            return [(name, do(c, base, "GET", "/dns-query?dns="
                              + b64(query_wire(name + ".test."))).summary()) for name in NAMES]
    assert_same(views_of_both(start_proc, CONF, lambda: {"backend": backend.address}, answers))
