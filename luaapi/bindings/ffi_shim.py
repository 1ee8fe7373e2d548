"""The one `require("ffi")` shim (luaapi/ffi_shim.lua) that FFI policies, rules and actions
share, and the Python side of its dnsdist_ffi_dnsquestion_* accessors, over the same pydist
DNSQuestion the Lua `dq` wraps. Accessors pydist cannot honour raise FFIUnsupported, which
the calling rule or action reports like any Lua error, rather than answering wrongly."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from luaapi.convert import as_str
from pydist import policies
from pydist.dns.burtle import burtle_ci
from pydist.rules import actions as A


class FFIUnsupported(Exception):
    """An FFI accessor dnsdist 1.7.3 has but pydist cannot carry out (DoH, SNMP, ...)."""


def _text(v: Any) -> bytes:
    """A Lua string's bytes (the runtime decodes Lua strings as latin-1)."""
    return v if isinstance(v, bytes) else str(v).encode("latin-1")


def _addr(h: Any, which: str) -> tuple[str, int]:
    dq = h._dq
    return (dq.remote[0], dq.remote[1]) if which == "remote" else dq.local


def raw_addr(h: Any, which: str, bits: int) -> bytes:
    """The address in network order (4 or 16 bytes), masked to `bits` when bits >= 0."""
    ip = ipaddress.ip_address(_addr(h, which)[0].split("%")[0])
    if which == "local" and ip.is_unspecified:
        # dnsdist reads the destination of each datagram (IP_PKTINFO); pydist does not
        raise FFIUnsupported("dnsdist_ffi_dnsquestion_get_localaddr: pydist does not know "
                             f"the destination address of a query to the wildcard listener {ip}")
    if bits >= 0:
        ip = ipaddress.ip_network(f"{ip}/{min(bits, ip.max_prefixlen)}", strict=False)
        ip = ip.network_address
    return ip.packed


def port(h: Any, which: str) -> int:
    return int(_addr(h, which)[1])


def qname_raw(h: Any) -> bytes:
    """The wire qname as the client sent it (case kept, as DNSName's storage)."""
    dq = h._dq
    return bytes(dq.data[12:dq.qname_end])


def qname_hash(h: Any, init: Any) -> int:
    """DNSName::hash(init): lookup2 of the lowercased wire qname."""
    return burtle_ci(qname_raw(h), int(init or 0))


def header(h: Any) -> bytes:
    return bytes(h._dq.data[:12])


def set_header(h: Any, raw: Any) -> None:
    h._dq.data[:12] = _text(raw)[:12]


def set_rcode(h: Any, rcode: int) -> None:
    dq = h._dq
    dq.rcode = rcode
    dq.set_flag(2, 0x80, True)


def length(h: Any) -> int:
    return len(h._dq.data)


def set_length(h: Any, n: int) -> bool:
    """Truncate (or zero-extend) the query, as resizing dnsdist's buffer does."""
    data = h._dq.data
    if n < 12 or n > 65535:
        return False
    if n < len(data):
        del data[n:]
    else:
        data.extend(b"\x00" * (n - len(data)))
    return True


FIELDS = {"skip_cache", "use_ecs", "ecs_override", "ecs_prefix_length", "temp_failure_ttl"}


def get(h: Any, field: str) -> Any:
    return getattr(h._dq, field) if field in FIELDS else None


def set_(h: Any, field: str, value: Any) -> None:
    if field in FIELDS:
        setattr(h._dq, field, value)


def ecs_prefix_length(h: Any) -> int:
    """The dq's own value, else setECSSourcePrefixV4/V6 for the client's family."""
    dq = h._dq
    if dq.ecs_prefix_length:
        return dq.ecs_prefix_length
    st = h._rt.registry.settings
    return st.ecs_source_prefix_v6 if ":" in dq.remote[0] else st.ecs_source_prefix_v4


def sni(h: Any) -> bytes:
    return _text(h._dq.sni or "")


def get_tag(h: Any, label: Any) -> Any:
    """The tag's value, or nil (a NULL const char*) when the query has no such tag."""
    return (h._dq.tags or {}).get(as_str(label))


def set_tag(h: Any, label: Any, value: Any) -> None:
    h._dq.set_tag(as_str(label), as_str(value))


def tag_array(h: Any) -> Any:
    return h._rt.lua.table_from([h._rt.lua.table_from([k, v])
                                 for k, v in (h._dq.tags or {}).items()])


def edns_options(h: Any) -> Any:
    return h._rt.lua.table_from([h._rt.lua.table_from([code, data])
                                 for code, data in h._dq.edns_options()])


def http(h: Any, what: str) -> str | None:
    """A DoH query's request part; NULL outside DoH, as in dnsdist."""
    req = h._dq.http
    if req is None:
        return None
    if what == "path":
        return req.http_path()
    if what == "query string":
        return req.query_string()
    return req.host if what == "host" else req.scheme


def http_headers(h: Any) -> Any:
    req = h._dq.http
    return h._rt.lua.table_from(req.header_map() if req is not None else {})


def set_http_response(h: Any, status: int, body: Any, ctype: str) -> None:
    """The HTTP answer of a DoH query (ignored outside DoH). Unlike dq:setHTTPResponse(), the
    FFI form also turns the query into an answer (QR=1, as dnsdist 1.7.3), so the HTTP answer
    is sent whatever verdict the action returns."""
    if h._dq.http is not None:
        raw = body.encode("latin-1") if isinstance(body, str) else bytes(body)
        h._dq.http.http_response = (int(status), raw, str(ctype))
        h._dq.set_flag(2, 0x80, True)


def trailing_data(h: Any) -> bytes:
    return h._dq.trailing_data()


def set_trailing_data(h: Any, data: Any) -> bool:
    return h._dq.set_trailing_data(_text(data))


def send_trap(h: Any, reason: Any) -> None:
    """dnsdist sends nothing unless snmpAgent() enabled traps; pydist has no SNMP agent."""
    if getattr(h._rt.registry.settings, "snmp_traps", False):
        raise FFIUnsupported("dnsdist_ffi_dnsquestion_send_trap: pydist has no SNMP agent")


def spoof_raw(h: Any, values: Any) -> None:
    A.SpoofRawAction([_text(v) for v in values.values()])(h._dq)


def spoof_addrs(h: Any, values: Any) -> None:
    addrs = [str(ipaddress.ip_address(_text(v))) for v in values.values()
             if len(_text(v)) in (4, 16)]
    A.SpoofAction(addrs)(h._dq)


def _servers(table: Any) -> list[Any]:
    return [s.server for s in table.values()]


def hashed_accessors(settings: policies.PolicySettings) -> dict[str, Callable[[Any, int], int]]:
    """The FFI's whashed/chashed over a hash, reading the runtime registry's policy knobs."""
    def whashed(table: Any, h: int) -> int:
        servers = _servers(table)
        s = policies.weighted(servers, h, settings.weighted_balancing_factor)
        return servers.index(s) if s is not None else 0

    def chashed(table: Any, h: int) -> int:
        servers = _servers(table)
        s = policies.chashed_from_hash(servers, h, settings)
        return servers.index(s) if s is not None else 0
    return {"whashed": whashed, "chashed": chashed}


ACCESSORS = {
    "raw_addr": raw_addr, "port": port, "qname_raw": qname_raw, "qname_hash": qname_hash,
    "header": header, "set_header": set_header, "set_rcode": set_rcode, "length": length, "set_length": set_length,
    "get": get, "set": set_, "ecs_prefix_length": ecs_prefix_length, "sni": sni,
    "get_tag": get_tag, "set_tag": set_tag, "tag_array": tag_array,
    "edns_options": edns_options, "http": http, "http_headers": http_headers,
    "set_http_response": set_http_response,
    "trailing_data": trailing_data, "set_trailing_data": set_trailing_data,
    "send_trap": send_trap, "spoof_raw": spoof_raw, "spoof_addrs": spoof_addrs,
}


def shim(rt: Any) -> Any:
    """The shim's Lua module (policy_call, rule, action, per_thread, load_policy), installed
    once per runtime."""
    m = getattr(rt, "_ffi_shim", None)
    if m is None:
        from luaapi.runtime import read_package_text
        code = read_package_text("ffi_shim.lua")
        accessors = dict(ACCESSORS, **hashed_accessors(rt.registry.policy_settings))
        m = rt._ffi_shim = rt.lua.execute(code, rt.lua.table_from(accessors))
    return m
