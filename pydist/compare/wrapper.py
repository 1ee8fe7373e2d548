"""The Lua wrapper: one generated file per side that moves every address to loopback.

Both implementations run Lua, so the same wrapper redefines the address-taking functions
and then loads the user's file (unmodified) as a chunk named "chunk", as dnsdist does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class WrapperPlan:
    """What one side's wrapper needs: the ports it may hand out and the upstream map."""

    config_path: str
    listen_ports: list[int]
    responder_ports: list[int]
    console_port: int
    web_port: int
    web_api_key: str
    notes_path: str
    upstream_map: dict[str, str] = field(default_factory=dict)
    map_loopback_upstreams: bool = False
    enable_metrics: bool = False
    extra_lua: str = ""
    tls_cert: str = ""          # stands in for DoT certificates that are not on this machine
    tls_key: str = ""
    tls_tickets: str = ""       # ... and for ticket key files (one random 80-byte key)
    doh_ports: list[int] = field(default_factory=list)   # DoH stand-ins, one per responder port


def normalize_upstream(addr: str, default_port: int = 53) -> str:
    """Canonical "ip:port" / "[ipv6]:port" form, the key the Lua side looks up."""
    addr = addr.strip()
    if addr.startswith("["):
        return addr if "]:" in addr else addr + f":{default_port}"
    if addr.count(":") > 1:
        return f"[{addr}]:{default_port}"
    return addr if ":" in addr else f"{addr}:{default_port}"


def _lua_str(value: str) -> str:
    """A Lua string literal (JSON escapes are valid Lua 5.1 escapes for ASCII)."""
    return json.dumps(value, ensure_ascii=True)


def _lua_int_list(values: list[int]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


def _lua_map(mapping: dict[str, str]) -> str:
    items = ", ".join(f"[{_lua_str(normalize_upstream(k))}] = {_lua_str(v)}" for k, v in mapping.items())
    return "{" + items + "}"


_BODY = r"""
local PC = {}
PC.notes = io.open(PC_NOTES, "w")
function PC.note(kind, text)
  if PC.notes then PC.notes:write(kind .. "\t" .. text .. "\n"); PC.notes:flush() end
end
function PC.norm(a)
  a = tostring(a)
  if string.sub(a, 1, 1) == "[" then
    if string.find(a, "]:", 1, true) then return a end
    return a .. ":53"
  end
  local _, colons = string.gsub(a, ":", "")
  if colons > 1 then return "[" .. a .. "]:53" end
  if colons == 0 then return a .. ":53" end
  return a
end
function PC.isloopback(a)
  return string.sub(a, 1, 4) == "127." or string.sub(a, 1, 5) == "[::1]"
end
PC.nextlisten = 1
function PC.listenaddr(orig, kind)
  local port = PC_LISTEN[PC.nextlisten]
  if port == nil then error("pydist-compare: too many listeners") end
  PC.nextlisten = PC.nextlisten + 1
  local a = "127.0.0.1:" .. port
  PC.note("listener", kind .. "\t" .. tostring(orig) .. "\t" .. a)
  return a
end
function PC.readable(files)
  if files == nil then return false end
  if type(files) == "string" then files = {files} end
  if type(files) ~= "table" then return false end
  local any = false
  for _, f in pairs(files) do
    local h = io.open(tostring(f), "r")
    if h == nil then return false end
    h:close(); any = true
  end
  return any
end
PC.tags = {}
PC.ntags = 0
function PC.standinindex(pools)
  local names = {}
  if type(pools) == "string" then names = {pools}
  elseif type(pools) == "table" then for _, p in pairs(pools) do names[#names + 1] = tostring(p) end end
  table.sort(names)
  local tag = table.concat(names, ",")
  if PC.tags[tag] == nil then
    PC.tags[tag] = PC.ntags % #PC_RESPONDER + 1
    PC.ntags = PC.ntags + 1
  end
  return PC.tags[tag], tag
end
function PC.standin(pools)
  local index, tag = PC.standinindex(pools)
  return "127.0.0.1:" .. PC_RESPONDER[index], tag
end
-- a DoH server (tls and dohPath, as dnsdist 1.7.3 requires both) goes to the DoH stand-in of
-- its pools, whose throwaway certificate nobody can validate: validation is turned off
function PC.dohupstream(t)
  local key = PC.norm(t.address)
  local mapped = PC_UPSTREAMS[key]
  if mapped == nil and PC.isloopback(key) and not PC_MAP_LOOPBACK then return end
  if mapped == nil then
    local index, tag = PC.standinindex(t.pool)
    mapped = "127.0.0.1:" .. PC_DOH[index]
    PC.note("upstream", key .. "\t" .. mapped .. "\tDoH responder pools=" .. tag)
  else
    PC.note("upstream", key .. "\t" .. mapped .. "\tmapped")
  end
  PC.note("substituted", "newServer DoH to " .. key .. ": certificate validation off for the DoH responder")
  t.address = mapped; t.validateCertificates = false; t.caStore = nil
end
function PC.upstream(addr, pools)
  if addr == nil then return nil end
  local key = PC.norm(addr)
  local mapped = PC_UPSTREAMS[key]
  if mapped ~= nil then PC.note("upstream", key .. "\t" .. mapped .. "\tmapped"); return mapped end
  if PC.isloopback(key) and not PC_MAP_LOOPBACK then return addr end
  local standin, tag = PC.standin(pools)
  PC.note("upstream", key .. "\t" .. standin .. "\tresponder pools=" .. tag)
  return standin
end

local orig_setSecurityPollSuffix = setSecurityPollSuffix
orig_setSecurityPollSuffix("")
setSecurityPollSuffix = function(...) return orig_setSecurityPollSuffix("") end

local orig_newServer = newServer
newServer = function(a, ...)
  if type(a) == "table" then
    local t = {}
    for k, v in pairs(a) do t[k] = v end
    if t.tcpOnly == true or (t.tls ~= nil and t.dohPath ~= nil) then
      -- its UDP clients' answers are not in its responses counter (dnsdist 1.7.3)
      PC.note("tcpcarried", tostring(t.address))
    end
    if t.tls ~= nil and t.dohPath ~= nil and #PC_DOH > 0 then
      PC.dohupstream(t)
      return orig_newServer(t, ...)
    end
    if t.tls ~= nil then
      PC.note("notcomparable", "newServer tls=" .. tostring(t.tls) .. " to " .. tostring(t.address) .. " replaced by plain DNS")
      t.tls = nil; t.subjectName = nil; t.caStore = nil; t.validateCertificates = nil
      t.dohPath = nil; t.subjectAddr = nil; t.ciphers = nil; t.ciphersTLS13 = nil
    end
    if t.address ~= nil then t.address = PC.upstream(t.address, t.pool) end
    return orig_newServer(t, ...)
  elseif type(a) == "string" then
    return orig_newServer(PC.upstream(a, nil), ...)
  end
  return orig_newServer(a, ...)
end

PC.haslistener = false
local orig_setLocal = setLocal
setLocal = function(a, ...)
  PC.haslistener = true
  return orig_setLocal(PC.listenaddr(a, "setLocal"), ...)
end
local orig_addLocal = addLocal
addLocal = function(a, ...)
  PC.haslistener = true
  return orig_addLocal(PC.listenaddr(a, "addLocal"), ...)
end
local orig_addTLSLocal = addTLSLocal
addTLSLocal = function(a, certs, keys, ...)
  if PC.readable(certs) and PC.readable(keys) then
    return orig_addTLSLocal(PC.listenaddr(a, "addTLSLocal"), certs, keys, ...)
  end
  if PC_TLS_CERT ~= "" then
    PC.note("substituted", "addTLSLocal(" .. tostring(a) .. "): certificate or key not readable, served with a throwaway certificate")
    local opts = select(1, ...)
    if type(opts) == "table" then   -- ticket keys and OCSP files of that certificate go too
      local copy = {}
      for k, v in pairs(opts) do copy[k] = v end
      for _, k in ipairs({"ticketKeyFile", "ocspResponses", "keyLogFile"}) do
        if copy[k] ~= nil and (k == "keyLogFile" or not PC.readable(copy[k])) then
          if k == "ticketKeyFile" and PC_TLS_TICKETS ~= "" then
            -- both sides share one throwaway key (dropping the file can crash 1.7.3 when
            -- ticketsKeysRotationDelay is 0: no key at all)
            PC.note("substituted", "addTLSLocal(" .. tostring(a) .. "): ticketKeyFile replaced by a throwaway key file")
            copy[k] = PC_TLS_TICKETS
          else
            PC.note("substituted", "addTLSLocal(" .. tostring(a) .. "): " .. k .. " left out")
            copy[k] = nil
          end
        end
      end
      return orig_addTLSLocal(PC.listenaddr(a, "addTLSLocal"), PC_TLS_CERT, PC_TLS_KEY, copy, select(2, ...))
    end
    return orig_addTLSLocal(PC.listenaddr(a, "addTLSLocal"), PC_TLS_CERT, PC_TLS_KEY, ...)
  end
  PC.note("notcomparable", "addTLSLocal(" .. tostring(a) .. "): certificate or key not readable, listener left out")
end
local orig_addDOHLocal = addDOHLocal
addDOHLocal = function(a, certs, keys, ...)
  if not (PC.readable(certs) and PC.readable(keys)) then
    if certs ~= nil then
      PC.note("notcomparable", "addDOHLocal(" .. tostring(a) .. "): certificate or key not readable, run as plain DoH over HTTP")
    end
    certs = nil; keys = nil
  end
  local addr = PC.listenaddr(a, "addDOHLocal")
  local urls, url = select(1, ...), "/dns-query"
  if type(urls) == "string" then url = urls
  elseif type(urls) == "table" and urls[1] ~= nil then url = tostring(urls[1]) end
  PC.note("doh", ((certs ~= nil and certs ~= "") and "https" or "http") .. "\t" .. url .. "\t" .. addr)
  return orig_addDOHLocal(addr, certs, keys, ...)
end
if addDNSCryptBind ~= nil then
  addDNSCryptBind = function(a, ...)
    PC.note("notcomparable", "addDNSCryptBind(" .. tostring(a) .. "): DNSCrypt listener left out")
  end
end
local orig_controlSocket = controlSocket
PC.hasconsole = false
controlSocket = function(a, ...)
  PC.hasconsole = true
  PC.note("console", tostring(a))
  return orig_controlSocket("127.0.0.1:" .. PC_CONSOLE, ...)
end
local orig_webserver = webserver
PC.haswebserver = false
webserver = function(a, ...)
  PC.haswebserver = true
  PC.note("webserver", tostring(a))
  local args = {...}
  local n = select("#", ...)
  -- positional credentials are applied when the web server launches, after the config:
  -- the API key the comparer scrapes with has to go in there too
  if PC_METRICS and n >= 2 and args[2] ~= nil then args[2] = PC_APIKEY end
  if PC_METRICS and n >= 4 and args[4] ~= nil then args[4] = "127.0.0.1/32" end
  return orig_webserver("127.0.0.1:" .. PC_WEB, unpack(args, 1, n))
end
if carbonServer ~= nil then
  local orig_carbonServer = carbonServer
  carbonServer = function(a, ...)
    PC.note("notcomparable", "carbonServer(" .. tostring(a) .. ") sent to a closed loopback port")
    return orig_carbonServer("127.0.0.1:9", ...)
  end
end
for _, fname in ipairs({"newRemoteLogger", "newFrameStreamTcpLogger"}) do
  local orig = _G[fname]
  if orig ~= nil then
    _G[fname] = function(a, ...)
      PC.note("notcomparable", fname .. "(" .. tostring(a) .. ") sent to a closed loopback port")
      return orig("127.0.0.1:9", ...)
    end
  end
end

local src
do
  local h, err = io.open(PC_CONFIG, "r")
  if h == nil then
    PC.note("config", "unreadable")
    src = ""
  else
    src = h:read("*a"); h:close()
  end
end
local chunk, err = loadstring(src, "chunk")
if chunk == nil then error(err, 0) end
chunk()

if not PC.haslistener then
  PC.note("default-listener", "yes")
  orig_setLocal(PC.listenaddr("(default)", "setLocal"))
end
if not PC.hasconsole then orig_controlSocket("127.0.0.1:" .. PC_CONSOLE) end
addConsoleACL("127.0.0.1/32")
if PC_METRICS then
  if not PC.haswebserver then orig_webserver("127.0.0.1:" .. PC_WEB) end
  setWebserverConfig({apiKey = PC_APIKEY, acl = "127.0.0.1/32"})
end
orig_setSecurityPollSuffix("")
"""


def render_wrapper(plan: WrapperPlan) -> str:
    """The Lua text of one side's wrapper."""
    head = [
        "-- generated by pydist-compare: moves listeners, console, web server and upstreams",
        "-- to loopback, then runs the user's configuration unmodified.",
        f"local PC_CONFIG = {_lua_str(plan.config_path)}",
        f"local PC_NOTES = {_lua_str(plan.notes_path)}",
        f"local PC_LISTEN = {_lua_int_list(plan.listen_ports)}",
        f"local PC_RESPONDER = {_lua_int_list(plan.responder_ports)}",
        f"local PC_CONSOLE = {plan.console_port}",
        f"local PC_WEB = {plan.web_port}",
        f"local PC_APIKEY = {_lua_str(plan.web_api_key)}",
        f"local PC_UPSTREAMS = {_lua_map(plan.upstream_map)}",
        f"local PC_MAP_LOOPBACK = {'true' if plan.map_loopback_upstreams else 'false'}",
        f"local PC_METRICS = {'true' if plan.enable_metrics else 'false'}",
        f"local PC_TLS_CERT = {_lua_str(plan.tls_cert)}",
        f"local PC_TLS_KEY = {_lua_str(plan.tls_key)}",
        f"local PC_TLS_TICKETS = {_lua_str(plan.tls_tickets)}",
        f"local PC_DOH = {_lua_int_list(plan.doh_ports)}",
    ]
    tail = ["-- extra lines (test-only differences)", plan.extra_lua] if plan.extra_lua else []
    return "\n".join(head) + "\n" + _BODY + "\n".join(tail) + "\n"
