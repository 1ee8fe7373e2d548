-- pydist prelude: Lua-side helpers and dnsdist's constant tables.
local classify = __pydist_classify
local unpack = unpack
local select = select
local pcall = pcall
local error = error
local type = type

local function pack(...) return {n = select('#', ...), ...} end

-- Wrap a Python callable so its exceptions surface as dnsdist-style Lua errors at the caller.
function __pydist_wrap(f)
  return function(...)
    local r = pack(pcall(f, ...))
    if r[1] then return unpack(r, 2, r.n) end
    local e = r[2]
    if type(e) == "string" or type(e) == "table" then error(e, 0) end
    local kind, msg = classify(e)
    if kind == "pdns" then error({pdns = msg}, 0) end
    error(msg, 2)
  end
end

-- dnsdist's words for an exception LuaWrapper does not know (a write to a member the object
-- lacks): no position, no traceback
local UNKNOWN = "Unknown Lua error"

local function handler(e)
  if type(e) == "userdata" and tostring(e) == UNKNOWN then return UNKNOWN end
  if type(e) == "table" and e.pdns then
    return {pdns = e.pdns, tb = debug.traceback("Exception thrown by a callback function called by Lua. ", 2)}
  end
  return debug.traceback(tostring(e), 1)
end

-- Run a chunk the way dnsdist runs its config: returns a status and messages.
function __pydist_run(code, name)
  local f, err = load(code, name)
  if not f then return "syntax", err end
  local ok, e = xpcall(f, handler)
  if ok then return "ok" end
  if type(e) == "table" then return "pdns", e.pdns, e.tb end
  return "runtime", e
end

DNSAction = {Drop=0, Nxdomain=1, Refused=2, Spoof=3, Allow=4, HeaderModify=5, Pool=6,
  Delay=7, Truncate=8, ServFail=9, None=10, NoOp=11, NoRecurse=12, SpoofRaw=13}
DNSResponseAction = {Allow=0, Delay=1, Drop=2, HeaderModify=3, ServFail=4, None=5}
DNSRCode = {NOERROR=0, FORMERR=1, SERVFAIL=2, NXDOMAIN=3, NOTIMP=4, REFUSED=5, YXDOMAIN=6,
  YXRRSET=7, NXRRSET=8, NOTAUTH=9, NOTZONE=10, BADVERS=16, BADSIG=16, BADKEY=17, BADTIME=18,
  BADMODE=19, BADNAME=20, BADALG=21, BADTRUNC=22, BADCOOKIE=23}
DNSClass = {IN=1, CHAOS=3, NONE=254, ANY=255}
DNSOpcode = {Query=0, IQuery=1, Status=2, Notify=4, Update=5}
DNSSection = {Question=0, Answer=1, Authority=2, Additional=3}
EDNSOptionCode = {NSID=3, DAU=5, DHU=6, N3U=7, ECS=8, EXPIRE=9, COOKIE=10, TCPKEEPALIVE=11,
  PADDING=12, CHAIN=13, KEYTAG=14}
DNSQType = {A=1, NS=2, MD=3, MF=4, CNAME=5, SOA=6, MB=7, MG=8, MR=9, NULL=10, WKS=11, PTR=12,
  HINFO=13, MINFO=14, MX=15, TXT=16, RP=17, AFSDB=18, SIG=24, KEY=25, AAAA=28, LOC=29, SRV=33,
  NAPTR=35, KX=36, CERT=37, A6=38, DNAME=39, OPT=41, APL=42, DS=43, SSHFP=44, IPSECKEY=45,
  RRSIG=46, NSEC=47, DNSKEY=48, DHCID=49, NSEC3=50, NSEC3PARAM=51, TLSA=52, SMIMEA=53, RKEY=57,
  CDS=59, CDNSKEY=60, OPENPGPKEY=61, CSYNC=62, ZONEMD=63, SVCB=64, HTTPS=65, SPF=99,
  EUI48=108, EUI64=109, TKEY=249, TSIG=250, IXFR=251, AXFR=252, MAILB=253, MAILA=254, ANY=255,
  URI=256, CAA=257, DLV=32769, ADDR=65400, ALIAS=65401, LUA=65402}
