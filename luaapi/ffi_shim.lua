-- dnsdist 1.7.3's C FFI interface (dnsdist-lua-ffi-interface.h) as pydist offers it: the
-- struct types are declared for real, the functions are Lua implementations over the query
-- being handled (a Python DQHandle, `dqh`), since pydist exports no C symbols. ffi.C is a
-- table of them whose __index is LuaJIT's own C namespace, so a name dnsdist 1.7.3 does not
-- declare fails exactly as there: "missing declaration for symbol '...'", from '__index'.
-- Pointers handed to user code are stand-ins (a cast small integer); they are valid during
-- the call only, as in dnsdist. Strings returned through pointers are kept alive in `keep`
-- until the function returns.
local P = ...
local real = require("ffi")
pcall(real.cdef, [[
typedef struct dnsdist_ffi_dnsquestion_t dnsdist_ffi_dnsquestion_t;
typedef struct dnsdist_ffi_servers_list_t dnsdist_ffi_servers_list_t;
typedef struct dnsdist_ffi_server_t dnsdist_ffi_server_t;
typedef struct dnsdist_ffi_ednsoption {
  uint16_t    optionCode;
  uint16_t    len;
  const void* data;
} dnsdist_ffi_ednsoption_t;
typedef struct dnsdist_ffi_http_header {
  const char* name;
  const char* value;
} dnsdist_ffi_http_header_t;
typedef struct dnsdist_ffi_tag {
  const char* name;
  const char* value;
} dnsdist_ffi_tag_t;
typedef struct dnsdist_ffi_raw_value {
  const char* value;
  uint16_t size;
} dnsdist_ffi_raw_value_t;
typedef struct dnsdist_ffi_stat_node_t dnsdist_ffi_stat_node_t;
]])
local cast, new, fstring, tonumber, type, error = real.cast, real.new, real.string, tonumber,
  type, error
local band, rshift = bit.band, bit.rshift
local NULL = cast("const char*", nil)
local NONE = {}
local servers, dqh, keep, result, hdr = NONE, nil, {}, nil, nil

-- a NUL-terminated copy (not the interned Lua string: `ptr == "text"` is false, as in C)
local function cstr(s)
  if s == nil then return NULL end
  local buf = new("char[?]", #s + 1)
  real.copy(buf, s)
  keep[#keep + 1] = buf
  return cast("const char*", buf)
end
local function size(n) return cast("size_t", n) end
local function srv(p) return servers[tonumber(cast("intptr_t", p))] end
local function raw_out(s, addr, len)
  keep[#keep + 1] = s
  addr[0] = s
  len[0] = #s
end
-- an array of `ctype` built from Python's list of pairs, kept alive until the next call
local function pairs_out(items, ctype, out, fill)
  local n = #items
  if n == 0 then return size(0) end
  local arr = new(ctype .. "[?]", n)
  keep[#keep + 1] = arr
  for i = 1, n do
    local a, b = items[i][1], items[i][2]
    fill(arr[i - 1], a, b)
  end
  out[0] = arr
  return size(n)
end
-- get_header hands out a copy of the header (`hdr`), written back when the function returns;
-- a Python edit of the packet gets the copy's changes first, and the copy follows the edit
local function edit(f, ...)
  if hdr ~= nil then P.set_header(dqh, fstring(hdr, 12)) end
  local r = f(dqh, ...)
  if hdr ~= nil then real.copy(hdr, P.header(dqh), 12) end
  return r
end
local function raw_values(values, count)
  local out = {}
  for i = 0, tonumber(count) - 1 do
    out[#out + 1] = fstring(values[i].value, values[i].size)
  end
  return out
end

local shim = {
  -- the servers list of an FFI policy
  dnsdist_ffi_servers_list_get_count = function(list) return size(#servers) end,
  dnsdist_ffi_servers_list_get_server = function(list, idx, out)
    local i = tonumber(idx)
    if i < 0 or i >= #servers then error("server index out of range", 2) end
    out[0] = cast("const dnsdist_ffi_server_t*", i + 1)
  end,
  dnsdist_ffi_servers_list_chashed = function(list, dq, hash)
    return size(P.chashed(servers, tonumber(hash)))
  end,
  dnsdist_ffi_servers_list_whashed = function(list, dq, hash)
    return size(P.whashed(servers, tonumber(hash)))
  end,
  dnsdist_ffi_server_is_up = function(p) return srv(p):isUp() end,
  dnsdist_ffi_server_get_outstanding = function(p)
    return cast("uint64_t", srv(p):getOutstanding())
  end,
  dnsdist_ffi_server_get_weight = function(p) return srv(p).weight end,
  dnsdist_ffi_server_get_order = function(p) return srv(p).order end,
  dnsdist_ffi_server_get_latency = function(p) return srv(p):getLatency() end,
  dnsdist_ffi_server_get_name = function(p) return cstr(srv(p):getName()) end,
  dnsdist_ffi_server_get_name_with_addr = function(p) return cstr(srv(p):getNameWithAddr()) end,

  -- the question
  dnsdist_ffi_dnsquestion_get_localaddr = function(dq, addr, len)
    raw_out(P.raw_addr(dqh, "local", -1), addr, len)
  end,
  dnsdist_ffi_dnsquestion_get_remoteaddr = function(dq, addr, len)
    raw_out(P.raw_addr(dqh, "remote", -1), addr, len)
  end,
  dnsdist_ffi_dnsquestion_get_masked_remoteaddr = function(dq, addr, len, bits)
    raw_out(P.raw_addr(dqh, "remote", tonumber(bits)), addr, len)
  end,
  dnsdist_ffi_dnsquestion_get_local_port = function(dq) return P.port(dqh, "local") end,
  dnsdist_ffi_dnsquestion_get_remote_port = function(dq) return P.port(dqh, "remote") end,
  dnsdist_ffi_dnsquestion_get_qname_raw = function(dq, out, len)
    raw_out(P.qname_raw(dqh), out, len)
  end,
  dnsdist_ffi_dnsquestion_get_qname_hash = function(dq, init)
    return size(P.qname_hash(dqh, tonumber(init)))
  end,
  dnsdist_ffi_dnsquestion_get_qtype = function(dq) return dqh.qtype end,
  dnsdist_ffi_dnsquestion_get_qclass = function(dq) return dqh.qclass end,
  dnsdist_ffi_dnsquestion_get_rcode = function(dq)
    if hdr ~= nil then return band(hdr[3], 0x0F) end
    return dqh.rcode
  end,
  dnsdist_ffi_dnsquestion_get_header = function(dq)
    -- a copy of the 12 header bytes, written back into the query when the function returns
    if hdr == nil then
      local h = P.header(dqh)
      hdr = new("uint8_t[12]")
      real.copy(hdr, h, 12)
    end
    return cast("void*", hdr)
  end,
  dnsdist_ffi_dnsquestion_get_len = function(dq) return P.length(dqh) end,
  dnsdist_ffi_dnsquestion_get_size = function(dq) return size(P.length(dqh)) end,
  dnsdist_ffi_dnsquestion_set_len = function(dq, n) edit(P.set_length, tonumber(n)) end,
  dnsdist_ffi_dnsquestion_set_size = function(dq, n) return edit(P.set_length, tonumber(n)) end,
  dnsdist_ffi_dnsquestion_get_opcode = function(dq)
    if hdr ~= nil then return band(rshift(hdr[2], 3), 0x0F) end
    return dqh.opcode
  end,
  dnsdist_ffi_dnsquestion_get_tcp = function(dq) return dqh.tcp end,
  dnsdist_ffi_dnsquestion_get_skip_cache = function(dq) return P.get(dqh, "skip_cache") end,
  dnsdist_ffi_dnsquestion_get_use_ecs = function(dq) return P.get(dqh, "use_ecs") end,
  dnsdist_ffi_dnsquestion_get_add_xpf = function(dq) return true end,
  dnsdist_ffi_dnsquestion_get_ecs_override = function(dq) return P.get(dqh, "ecs_override") end,
  dnsdist_ffi_dnsquestion_get_ecs_prefix_length = function(dq) return P.ecs_prefix_length(dqh) end,
  dnsdist_ffi_dnsquestion_is_temp_failure_ttl_set = function(dq)
    return P.get(dqh, "temp_failure_ttl") ~= nil
  end,
  dnsdist_ffi_dnsquestion_get_temp_failure_ttl = function(dq)
    return P.get(dqh, "temp_failure_ttl") or 0
  end,
  dnsdist_ffi_dnsquestion_get_do = function(dq) return dqh:getDO() end,
  dnsdist_ffi_dnsquestion_get_sni = function(dq, out, len) raw_out(P.sni(dqh), out, len) end,
  dnsdist_ffi_dnsquestion_get_tag = function(dq, label)
    return cstr(P.get_tag(dqh, fstring(label)))
  end,
  dnsdist_ffi_dnsquestion_get_http_path = function(dq) return cstr(P.http(dqh, "path")) end,
  dnsdist_ffi_dnsquestion_get_http_query_string = function(dq)
    return cstr(P.http(dqh, "query string"))
  end,
  dnsdist_ffi_dnsquestion_get_http_host = function(dq) return cstr(P.http(dqh, "host")) end,
  dnsdist_ffi_dnsquestion_get_http_scheme = function(dq) return cstr(P.http(dqh, "scheme")) end,
  dnsdist_ffi_dnsquestion_get_edns_options = function(dq, out)
    return pairs_out(P.edns_options(dqh), "dnsdist_ffi_ednsoption_t", out, function(e, code, data)
      keep[#keep + 1] = data
      e.optionCode, e.len, e.data = code, #data, data
    end)
  end,
  dnsdist_ffi_dnsquestion_get_http_headers = function(dq, out)
    return pairs_out(P.http_headers(dqh), "dnsdist_ffi_http_header_t", out, function(e, k, v)
      e.name, e.value = cstr(k), cstr(v)
    end)
  end,
  dnsdist_ffi_dnsquestion_get_tag_array = function(dq, out)
    return pairs_out(P.tag_array(dqh), "dnsdist_ffi_tag_t", out, function(e, k, v)
      e.name, e.value = cstr(k), cstr(v)
    end)
  end,
  dnsdist_ffi_dnsquestion_set_result = function(dq, s, len) result = fstring(s, len) end,
  -- as dnsdist 1.7.3 (checked): the query becomes a response (QR), which HeaderModify sends
  dnsdist_ffi_dnsquestion_set_rcode = function(dq, rcode)
    edit(P.set_rcode, band(tonumber(rcode), 0x0F))
  end,
  dnsdist_ffi_dnsquestion_set_skip_cache = function(dq, v) P.set(dqh, "skip_cache", v) end,
  dnsdist_ffi_dnsquestion_set_use_ecs = function(dq, v) P.set(dqh, "use_ecs", v) end,
  dnsdist_ffi_dnsquestion_set_ecs_override = function(dq, v) P.set(dqh, "ecs_override", v) end,
  dnsdist_ffi_dnsquestion_set_ecs_prefix_length = function(dq, v)
    P.set(dqh, "ecs_prefix_length", tonumber(v))
  end,
  dnsdist_ffi_dnsquestion_set_temp_failure_ttl = function(dq, v)
    P.set(dqh, "temp_failure_ttl", tonumber(v))
  end,
  dnsdist_ffi_dnsquestion_unset_temp_failure_ttl = function(dq)
    P.set(dqh, "temp_failure_ttl", nil)
  end,
  dnsdist_ffi_dnsquestion_set_tag = function(dq, label, value)
    P.set_tag(dqh, fstring(label), fstring(value))
  end,
  dnsdist_ffi_dnsquestion_set_http_response = function(dq, status, body, len, ctype)
    P.set_http_response(dqh, tonumber(status), fstring(body, len),
                        ctype ~= nil and fstring(ctype) or "")
  end,
  dnsdist_ffi_dnsquestion_get_trailing_data = function(dq, out)
    local s = P.trailing_data(dqh)
    keep[#keep + 1] = s
    out[0] = s
    return size(#s)
  end,
  dnsdist_ffi_dnsquestion_set_trailing_data = function(dq, data, len)
    return edit(P.set_trailing_data, fstring(data, len))
  end,
  dnsdist_ffi_dnsquestion_send_trap = function(dq, reason, len)
    P.send_trap(dqh, fstring(reason, len))
  end,
  dnsdist_ffi_dnsquestion_spoof_raw = function(dq, values, count)
    edit(P.spoof_raw, raw_values(values, count))
  end,
  dnsdist_ffi_dnsquestion_spoof_addrs = function(dq, values, count)
    edit(P.spoof_addrs, raw_values(values, count))
  end,
}
-- setSuffixMatchRuleFFI's node accessors (dnsdist-lua-inspection-ffi.h). dnsdist 1.7.3 exports
-- them but does not declare them: a config declares them with ffi.cdef first, and without that
-- ffi.C fails as there, "missing declaration for symbol '...'".
local node = nil        -- the StatNode being visited (a Lua table), during the visitor's call only
local stat = {}
for _, f in ipairs({"queries", "noerrors", "nxdomains", "servfails", "drops"}) do
  stat["dnsdist_ffi_stat_node_get_" .. f .. "_count"] = function(p)
    return cast("uint64_t", node[f])
  end
  stat["dnsdist_ffi_stat_node_get_children_" .. f .. "_count"] = function(p)
    return cast("uint64_t", node["children_" .. f])
  end
end
stat.dnsdist_ffi_stat_node_get_labels_count = function(p) return node.labels end
stat.dnsdist_ffi_stat_node_get_children_count = function(p) return node.children end
stat.dnsdist_ffi_stat_node_get_full_name_raw = function(p, name, len)
  raw_out(node.fullname, name, len)
end
-- offered once declared: ffi.cdef is wrapped to install those the config has just declared
local function declare_stat(defs)
  real.cdef(defs)
  for name, f in pairs(stat) do
    if rawget(shim, name) == nil then
      local ok, err = pcall(function() return real.C[name] end)
      if ok or not string.find(tostring(err), "missing declaration", 1, true) then
        shim[name] = f
      end
    end
  end
end
local C = setmetatable(shim, {__index = real.C})
package.loaded.ffi = setmetatable({C = C, cdef = declare_stat}, {__index = real})

local list_ptr = cast("const dnsdist_ffi_servers_list_t*", 0)
local dq_ptr = cast("dnsdist_ffi_dnsquestion_t*", 0)

local function enter(list, h)
  servers, dqh, keep, result, hdr = list, h, {}, nil, nil
end
local function leave()
  if hdr ~= nil then P.set_header(dqh, fstring(hdr, 12)) end
  local r = result
  servers, dqh, keep, result, hdr = NONE, nil, {}, nil, nil
  return r
end
-- LuaWrapper's words when a Lua value does not fit the C++ type the caller expects
local function cast_error(v, ctype)
  return 'Trying to cast a lua variable from "' .. type(v) .. '" to "' .. ctype .. '"'
end

local M = {}
function M.policy_call(f, list, h)
  enter(list, h)
  local ok, res = pcall(f, list_ptr, dq_ptr)
  leave()
  if not ok then error(res, 0) end
  return tonumber(res)
end
-- f(dq) on the query in h: its return value and the text set_result left. f is called as
-- fn[1](...), a call LuaJIT cannot name, so its traceback line reads
-- "in function <[string "chunk"]:N>", as dnsdist's direct call does
local function run(fn, h)
  enter(NONE, h)
  local ret = fn[1](dq_ptr)
  return ret, leave()
end
-- rule: g(dqh) -> true/false, or nil and the error text (no traceback, as LuaWrapper's)
function M.rule(f)
  local fn = {f}
  return function(h)
    local ret = run(fn, h)
    if type(ret) ~= "boolean" then return nil, cast_error(ret, "b") end
    return ret
  end
end
-- action: g(dqh) -> verdict, result text (set_result), or nil and the error text
function M.action(f)
  local fn = {f}
  return function(h)
    local ret, res = run(fn, h)
    local n = type(ret) == "string" and tonumber(ret) or ret
    if type(n) ~= "number" then return nil, cast_error(ret, "i") end
    return n, res
  end
end
-- per-thread: dnsdist loads the code in each thread's Lua state on its first query, once
-- (the state is marked loaded first, so a failure is reported once): a function that failed
-- to load is then `none` (no match / DNSAction.None) for good, as in 1.7.3 (checked)
function M.per_thread(code, wrap, ctype, none)
  local g, tried
  return function(h)
    if not tried then
      tried = true
      local chunk, err = loadstring(code)
      if chunk == nil then return nil, err end
      local f = chunk()
      if type(f) ~= "function" then return nil, cast_error(f, ctype) end
      g = wrap(f)
    end
    if g == nil then return none end
    return g(h)
  end
end
-- setSuffixMatchRuleFFI: visitor(node pointer) -> boolean, for the node in n (Python); errors
-- raise, as LuaWrapper's do out of dynBlockRulesGroup:apply()
local node_ptr = cast("dnsdist_ffi_stat_node_t*", 1)    -- a stand-in, not NULL (== nil)
function M.smt_visitor(f)
  local fn = {f}
  return function(n)
    node, keep = n, {}
    local ok, ret = pcall(fn[1], node_ptr)
    node, keep = nil, {}
    if not ok then error(ret, 0) end
    if type(ret) ~= "boolean" then error(cast_error(ret, "b"), 0) end
    return ret
  end
end
function M.load_policy(code)
  local chunk, err = loadstring(code)
  if not chunk then return nil, err end
  local ok, f = pcall(chunk)
  if not ok then return nil, f end
  return f
end
return M
