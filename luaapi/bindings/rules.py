"""Rules from Lua (dnsdist-lua-rules.cc, dnsdist-lua-actions.cc): selector and action
constructors, the add/show/rm/mv functions of the four chains, and the dq that Lua sees."""
from __future__ import annotations

import inspect
import ipaddress
import re
import sys
from typing import Any, Callable

from luaapi.bindings.objects import (ComboAddressHandle, DNSNameHandle, DNSNameSetHandle,
                                     NMGHandle, SMNHandle, to_dnsname)
from luaapi.convert import (as_bool, as_float, as_int, as_str, fail, is_function, is_table,
                            table_to_dict, table_to_list)
from luaapi import cppnames as C
from luaapi.bindings.luacall import guarded, lua_verdict_caller, shared_handle
from luaapi.errors import DnsdistError, LuaArgError, PdnsError
from pydist.dns.netmask import AddressError, NetmaskGroup, parse_address, parse_netmask
from pydist.dns.wire import WireError, qtype_from_text
from pydist.rules import actions as A
from pydist.rules import more_actions as MA
from pydist.rules import svc as SVC
from pydist.rules import http as H
from pydist.rules import selectors as S
from pydist.rules.chain import ChainError, Rule, unsupported_parts
from pydist.rules.cppsort import std_sort
from pydist.rules.names import SuffixMatchNode

# (least, most) arguments where the Python signature cannot say it (LuaWrapper's counts)
ARITY = {"addAction": (2, 3), "addResponseAction": (2, 3), "addCacheHitResponseAction": (2, 3),
         "addSelfAnsweredResponseAction": (2, 3), "QNameLabelsCountRule": (2, 2),
         "QNameWireLengthRule": (2, 2), "RecordsCountRule": (3, 3), "RecordsTypeCountRule": (4, 4),
         "NetmaskGroupRule": (1, 3), "makeRule": (1, 1), "NegativeAndSOAAction": (10, 11),
         "SetNegativeAndSOAAction": (10, 11)}


class ArityCheckedRuntime:
    """rt with fn() checking argument counts as LuaWrapper does ("This function requires at
    least/most N parameter(s)"), from each binding's signature or ARITY."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    def fn(self, name: str, func: Callable, no_side_effect: bool = False) -> None:
        least, most = ARITY.get(name) or _signature_arity(func)

        def checked(*a: Any) -> Any:
            if len(a) < least:
                raise LuaArgError(f"This function requires at least {least} parameter(s)")
            if len(a) > most:
                raise LuaArgError(f"This function requires at most {most} parameter(s)")
            return func(*a)
        self._rt.fn(name, checked, no_side_effect)


def _signature_arity(func: Callable) -> tuple[int, int]:
    """Required and named positional parameters; a trailing *a only absorbs Lua's extra nils."""
    params = [p for p in inspect.signature(func).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return sum(1 for p in params if p.default is p.empty), len(params)


class RuleHandle:
    """A selector as Lua holds it (shared_ptr<DNSRule>)."""

    def __init__(self, sel: S.Selector) -> None:
        self.sel = sel

    def toString(self, *a: Any) -> str:
        return str(self.sel)

    tostring = toString

    def getMatches(self, *a: Any) -> int:
        return 0

    def __str__(self) -> str:
        return str(self.sel)


_rt: Any = None      # the runtime, for printStats' console output (set by register)


class ActionHandle:
    """An action as Lua holds it (shared_ptr<DNSAction> / shared_ptr<DNSResponseAction>)."""

    def __init__(self, act: A.Action) -> None:
        self.act = act

    def printStats(self, *a: Any) -> None:
        """dnsdist's `name<TAB>value` lines, in its std::map order (actions with counters)."""
        stats = getattr(self.act, "stats", None)
        if stats is not None and _rt is not None:
            _rt.show("".join(f"{k}\t{v}\n" for k, v in sorted(stats().items())))

    def getStats(self, *a: Any) -> Any:
        stats = getattr(self.act, "stats", None)
        return _rt.lua.table_from(stats()) if stats is not None and _rt is not None else None

    def reload(self, *a: Any) -> None:
        pass


class SVCParametersHandle:
    """newSVCRecordParameters(): one SVCB/HTTPS record for SpoofSVCAction."""

    def __init__(self, params: Any) -> None:
        self.params = params


class RuleActionHandle:
    """newRuleAction(): a rule not yet in a chain, for setRules()."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def getSelector(self, *a: Any) -> RuleHandle:
        return RuleHandle(self.rule.selector)

    def getAction(self, *a: Any) -> ActionHandle:
        return ActionHandle(self.rule.action)


def qtype_arg(v: Any) -> int:
    if isinstance(v, str):
        try:
            return qtype_from_text(v)
        except WireError:
            raise DnsdistError(f"Unable to convert '{v}' to a DNS type") from None
    return as_int(v, C.INT_OR_STRING)


def negative_args(a: tuple) -> tuple:
    """(nxd, zone, ttl, mname, rname, (serial, refresh, retry, expire, minimum)) from Lua."""
    if len(a) < 10:
        raise LuaArgError("This function requires at least 10 parameter(s)")
    return (as_bool(a[0], C.BOOL), to_dnsname(a[1], C.STRING), as_int(a[2], C.UINT),
            to_dnsname(a[3], C.STRING), to_dnsname(a[4], C.STRING),
            tuple(as_int(x, C.UINT) for x in a[5:10]))


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def selector_arg(v: Any) -> S.Selector:
    """makeRule(): a rule, a string or list of netmasks or suffixes, or DNSName(s)."""
    if isinstance(v, RuleHandle):
        return v.sel
    if isinstance(v, DNSNameHandle):
        smn = SuffixMatchNode()
        smn.add(v.name)
        return S.SuffixMatchNodeRule(smn)
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        items = [v]
    elif is_table(v):
        items = table_to_list(v)
    else:
        raise fail(v, C.LUA_DNSRULE)
    nmg = NetmaskGroup()
    smn = SuffixMatchNode()
    for item in items:
        if isinstance(item, DNSNameHandle):
            smn.add(item.name)
            continue
        text = as_str(item)
        try:
            parse_netmask(text)
            nmg.add(text)
        except AddressError:
            smn.add(to_dnsname(text))
    if nmg.size():
        return S.NetmaskGroupRule(nmg)   # dnsdist's quirk: names in a mixed list are dropped
    return S.SuffixMatchNodeRule(smn)


def action_arg(v: Any, fname: str, response: bool) -> A.Action:
    if not isinstance(v, ActionHandle):
        raise fail(v, C.ANY_ACTION)
    if v.act.response != response:
        if response:
            raise DnsdistError(f"{fname}() can only be called with response-related actions, "
                               "not query-related ones. Are you looking for addAction()?")
        raise DnsdistError(f"{fname}() can only be called with query-related actions, "
                           "not response-related ones. Are you looking for addResponseAction()?")
    return v.act


def rule_params(p: Any) -> tuple[str, str | None]:
    if p is not None and not is_table(p):
        raise fail(p, C.RULE_PARAMS)
    d = table_to_dict(p)
    name = d.get("name")
    uuid = d.get("uuid")
    if uuid is not None:
        import uuid as uuidlib   # parsed only when a config names one (see pydist.uuids)
        try:    # shown as boost prints it: lowercase, with dashes
            uuid = str(uuidlib.UUID(as_str(uuid)))
        except ValueError:
            raise DnsdistError("invalid uuid string") from None
    return (as_str(name) if name is not None else ""), uuid


def response_config(t: Any) -> A.ResponseConfig:
    if t is not None and not is_table(t):
        raise fail(t, C.RESPONSE_CONFIG)
    d = table_to_dict(t)
    cfg = A.ResponseConfig()
    for k in ("aa", "ad", "ra"):
        if k in d:
            setattr(cfg, k, as_bool(d[k]))
    if "ttl" in d:
        cfg.ttl = as_int(d["ttl"])
    return cfg


# ---- the dq Lua sees ------------------------------------------------------------------------
class HeaderHandle:
    """dq.dh: getRD/setRD ... (no getTC/getQR in 1.7)."""

    def __init__(self, dq: Any) -> None:
        self._dq = dq

    def _get(self, byte: int, mask: int) -> bool:
        return self._dq.get_flag(byte, mask)

    def _set(self, byte: int, mask: int, v: Any) -> None:
        self._dq.set_flag(byte, mask, as_bool(v))

    def getRD(self, *a: Any) -> bool: return self._get(2, 0x01)
    def setRD(self, v: Any, *a: Any) -> None: self._set(2, 0x01, v)
    def getRA(self, *a: Any) -> bool: return self._get(3, 0x80)
    def setRA(self, v: Any, *a: Any) -> None: self._set(3, 0x80, v)
    def getAD(self, *a: Any) -> bool: return self._get(3, 0x20)
    def setAD(self, v: Any, *a: Any) -> None: self._set(3, 0x20, v)
    def getAA(self, *a: Any) -> bool: return self._get(2, 0x04)
    def setAA(self, v: Any, *a: Any) -> None: self._set(2, 0x04, v)
    def getCD(self, *a: Any) -> bool: return self._get(3, 0x10)
    def setCD(self, v: Any, *a: Any) -> None: self._set(3, 0x10, v)
    def setQR(self, v: Any, *a: Any) -> None: self._set(2, 0x80, v)

    def setTC(self, v: Any, *a: Any) -> None:
        self._set(2, 0x02, v)
        self._dq.set_flag(3, 0x80, self._dq.rd)


class EDNSOptionViewHandle:
    """dnsdist's EDNSOptionView: the values of one option code, with `:count()` and
    `:getValues()` (a 1-based table of strings) as Lua actions read them."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt
        self.values: list[str] = []

    def count(self, *a: Any) -> int:
        return len(self.values)

    def getValues(self, *a: Any) -> Any:
        return self._rt.lua.table_from(self.values)


class DQHandle:
    """dnsdist's DNSQuestion as Lua sees it, over a pydist DNSQuestion."""

    def __init__(self, dq: Any, rt: Any) -> None:
        self._dq = dq
        self._rt = rt

    def __getattr__(self, name: str) -> Any:
        """A field dnsdist's DNSQuestion does not have reads as nil (`if dq.pool then`)."""
        if name.startswith("_"):      # Python's own protocol lookups (lupa probes some)
            raise AttributeError(name)
        return None

    @property
    def qname(self) -> DNSNameHandle: return DNSNameHandle(self._dq.qname)
    @property
    def qtype(self) -> int: return self._dq.qtype
    @property
    def qclass(self) -> int: return self._dq.qclass
    @property
    def opcode(self) -> int: return self._dq.opcode
    @property
    def tcp(self) -> bool: return self._dq.tcp
    @property
    def len(self) -> int: return len(self._dq.data)
    @property
    def dh(self) -> HeaderHandle: return HeaderHandle(self._dq)

    @property
    def remoteaddr(self) -> ComboAddressHandle:
        r = self._dq.remote
        return ComboAddressHandle(r[0], r[1])

    @property
    def localaddr(self) -> ComboAddressHandle:
        return ComboAddressHandle(*self._dq.local)

    @property
    def rcode(self) -> int: return self._dq.rcode
    @rcode.setter
    def rcode(self, v: Any) -> None: self._dq.rcode = as_int(v)
    @property
    def skipCache(self) -> bool: return self._dq.skip_cache
    @skipCache.setter
    def skipCache(self, v: Any) -> None: self._dq.skip_cache = as_bool(v)
    @property
    def useECS(self) -> bool: return self._dq.use_ecs
    @useECS.setter
    def useECS(self, v: Any) -> None: self._dq.use_ecs = as_bool(v)
    @property
    def ecsOverride(self) -> bool: return self._dq.ecs_override
    @ecsOverride.setter
    def ecsOverride(self, v: Any) -> None: self._dq.ecs_override = as_bool(v)
    @property
    def ecsPrefixLength(self) -> int:
        """The rule's value, else the global setECSSourcePrefixV4/V6 for the client's family."""
        if self._dq.ecs_prefix_length:
            return self._dq.ecs_prefix_length
        st = self._rt.registry.settings
        return st.ecs_source_prefix_v6 if ":" in self._dq.remote[0] else st.ecs_source_prefix_v4
    @ecsPrefixLength.setter
    def ecsPrefixLength(self, v: Any) -> None: self._dq.ecs_prefix_length = as_int(v)
    @property
    def tempFailureTTL(self) -> Any: return self._dq.temp_failure_ttl
    @tempFailureTTL.setter
    def tempFailureTTL(self, v: Any) -> None:
        self._dq.temp_failure_ttl = None if v is None else as_int(v)

    def getDO(self, *a: Any) -> bool: return self._dq.edns_do()
    def getContent(self, *a: Any) -> str: return bytes(self._dq.data).decode("latin-1")
    def getTrailingData(self, *a: Any) -> str:
        return self._dq.trailing_data().decode("latin-1")

    def setTrailingData(self, tail: Any, *a: Any) -> bool:
        return self._dq.set_trailing_data(_lua_bytes(tail))

    def getServerNameIndication(self, *a: Any) -> str: return self._dq.sni
    def getProtocol(self, *a: Any) -> str: return self._dq.protocol
    def getHTTPPath(self, *a: Any) -> str:
        return self._dq.http.http_path() if self._dq.http is not None else ""

    def getHTTPQueryString(self, *a: Any) -> str:
        return self._dq.http.query_string() if self._dq.http is not None else ""

    def getHTTPHost(self, *a: Any) -> str:
        return self._dq.http.host if self._dq.http is not None else ""

    def getHTTPScheme(self, *a: Any) -> str:
        return self._dq.http.scheme if self._dq.http is not None else ""

    def getHTTPHeaders(self, *a: Any) -> Any:
        http = self._dq.http
        return self._rt.lua.table_from(http.header_map() if http is not None else {})

    def setHTTPResponse(self, status: Any = None, body: Any = "", ctype: Any = "",
                        *a: Any) -> None:
        """Takes effect when a DoH query is then answered (as dnsdist's DOHUnit)."""
        if self._dq.http is not None:
            raw = body.encode("latin-1") if isinstance(body, str) else bytes(body or b"")
            self._dq.http.http_response = (as_int(status), raw, as_str(ctype or ""))
    def sendTrap(self, *a: Any) -> None: pass
    def getTag(self, k: Any, *a: Any) -> str: return self._dq.get_tag(as_str(k))
    def setTag(self, k: Any, v: Any, *a: Any) -> None: self._dq.set_tag(as_str(k), as_str(v))

    def setTagArray(self, t: Any, *a: Any) -> None:
        for k, v in table_to_dict(t).items():
            self._dq.set_tag(as_str(k), as_str(v))

    def getTagArray(self, *a: Any) -> Any:
        return self._rt.lua.table_from(dict(self._dq.tags or {}))

    def getEDNSOptions(self, *a: Any) -> Any:
        """code -> EDNSOptionView, as dnsdist: every value of that code, in query order."""
        out: dict[int, EDNSOptionViewHandle] = {}
        for code, data in self._dq.edns_options():
            out.setdefault(code, EDNSOptionViewHandle(self._rt)).values.append(
                data.decode("latin-1"))
        return self._rt.lua.table_from(out)

    def spoof(self, what: Any, *a: Any) -> None:
        """As dnsdist 1.7.3's two overloads: a table of newCA() spoofs addresses, a table of
        strings spoofs raw rdata (even strings that read as addresses); anything else fails."""
        if not is_table(what):
            raise fail(what, C.SPOOF_VALUES)
        items = table_to_list(what)
        if items and all(isinstance(x, ComboAddressHandle) for x in items):
            A.SpoofAction([x.host for x in items])(self._dq)
        else:
            A.SpoofRawAction([_lua_bytes(x) for x in items])(self._dq)

    def addProxyProtocolValue(self, kind: Any, value: Any, *a: Any) -> None:
        """A TLV for the proxy protocol header sent to useProxyProtocol backends."""
        A.SetAdditionalProxyProtocolValueAction(as_int(kind), _lua_bytes(value))(self._dq)

    def setProxyProtocolValues(self, values: Any, *a: Any) -> None:
        self._dq.proxy_values = sorted(
            ((as_int(k), _lua_bytes(v)) for k, v in values.items()), key=lambda kv: -kv[0]) \
            if is_table(values) else []

    def getProxyProtocolValues(self, *a: Any) -> Any:
        return self._rt.lua.table_from({k: v for k, v in (self._dq.proxy_values or ())})

    def setNegativeAndAdditionalSOA(self, *a: Any) -> bool:
        nxd, zone, ttl, mname, rname, numbers = negative_args(a)
        MA.negative_answer(self._dq, nxd, zone, ttl, mname, rname, numbers, None)
        return True


def dq_for_lua(rt: Any, dq: Any) -> DQHandle:
    """The `dq` a Lua server policy receives: one handle per query, kept on the query."""
    h = dq.lua_handle
    if h is None:
        h = dq.lua_handle = DQHandle(dq, rt)
    return h


# ---- registration ---------------------------------------------------------------------------
CHAINS = (  # (chain key, Lua infix, add function, response actions?)
    ("query", "", "addAction", False),
    ("response", "Response", "addResponseAction", True),
    ("cachehit", "CacheHitResponse", "addCacheHitResponseAction", True),
    ("selfanswered", "SelfAnsweredResponse", "addSelfAnsweredResponseAction", True),
)


def register(rt: Any) -> None:
    global _rt
    _rt = rt
    rt = ArityCheckedRuntime(rt)
    reg = rt.registry
    sel = lambda s: RuleHandle(s)  # noqa: E731
    act = lambda a: ActionHandle(a)  # noqa: E731

    # --- selectors
    rt.fn("AllRule", lambda *a: sel(S.AllRule()))
    rt.fn("QNameRule", lambda n, *a: sel(S.QNameRule(to_dnsname(n, C.STRING))))

    def qname_set_rule(s: Any, *a: Any) -> RuleHandle:
        if not isinstance(s, DNSNameSetHandle):
            raise fail(s, C.NAMESET)
        return sel(S.QNameSetRule(s.set))
    rt.fn("QNameSetRule", qname_set_rule)

    def smn_rule(smn: Any, quiet: Any = None, *a: Any) -> RuleHandle:
        if not isinstance(smn, SMNHandle):
            raise fail(smn, C.SMN)
        return sel(S.SuffixMatchNodeRule(smn.smn, as_bool(quiet, C.OPT_BOOL)
                                         if quiet is not None else False))
    rt.fn("SuffixMatchNodeRule", smn_rule)

    def regex_rule(cls: type) -> Callable:
        def make(pattern: Any, *a: Any) -> RuleHandle:
            p = as_str(pattern, C.STRING)
            try:
                return sel(cls(p))
            except re.error as e:
                if cls is S.RE2Rule:   # RE2 logs (to stderr) and leaves a rule never matching
                    print(f"re2/re2.cc:205: Error parsing '{p}': {e.msg}: {p}", file=sys.stderr)
                    return sel(S.RE2Rule.never(p))
                raise PdnsError("Regular expression did not compile") from None
        return make
    rt.fn("RegexRule", regex_rule(S.RegexRule))
    rt.fn("RE2Rule", regex_rule(S.RE2Rule))
    rt.fn("QTypeRule", lambda t, *a: sel(S.QTypeRule(qtype_arg(t))))
    rt.fn("QClassRule", lambda c, *a: sel(S.QClassRule(as_int(c, C.INT))))
    rt.fn("OpcodeRule", lambda o, *a: sel(S.OpcodeRule(as_int(o, C.UINT8))))
    rt.fn("RDRule", lambda *a: sel(S.RDRule()))
    rt.fn("DNSSECRule", lambda *a: sel(S.DNSSECRule()))
    rt.fn("TCPRule", lambda b, *a: sel(S.TCPRule(as_bool(b, C.BOOL))))
    rt.fn("TrailingDataRule", lambda *a: sel(S.TrailingDataRule()))

    def nmg_rule(nmg: Any = None, src: Any = None, quiet: Any = None, *a: Any) -> RuleHandle:
        if not isinstance(nmg, NMGHandle):
            raise fail(nmg, C.NMG)
        return sel(S.NetmaskGroupRule(nmg.nmg, True if src is None else as_bool(src, C.OPT_BOOL),
                                      False if quiet is None else as_bool(quiet, C.OPT_BOOL)))
    rt.fn("NetmaskGroupRule", nmg_rule)
    rt.fn("DSTPortRule", lambda p, *a: sel(S.DSTPortRule(as_int(p, C.UINT16))))

    def rules_list(t: Any) -> list[S.Selector]:
        if not is_table(t):
            raise fail(t, C.RULE_LIST)
        out = []
        for r in table_to_list(t):
            if not isinstance(r, RuleHandle):
                raise fail(t, C.RULE_LIST)
            out.append(r.sel)
        return out
    rt.fn("AndRule", lambda t, *a: sel(S.AndRule(rules_list(t))))
    rt.fn("OrRule", lambda t, *a: sel(S.OrRule(rules_list(t))))

    def not_rule(r: Any, *a: Any) -> RuleHandle:
        if not isinstance(r, RuleHandle):
            raise fail(r, C.DNSRULE)
        return sel(S.NotRule(r.sel))
    rt.fn("NotRule", not_rule)

    def opt_int(v: Any, default: int, target: str = C.OPT_INT) -> int:
        return default if v is None else as_int(v, target)

    def max_qps_ip(qps: Any, v4: Any = None, v6: Any = None, burst: Any = None,
                   exp: Any = None, cleanup: Any = None, scan: Any = None, *a: Any) -> RuleHandle:
        opt_int(scan, 10, C.OPT_UINT)
        return sel(S.MaxQPSIPRule(as_int(qps, C.UINT), opt_int(v4, 32), opt_int(v6, 64),
                                  opt_int(burst, 0) or None, opt_int(exp, 300, C.OPT_UINT),
                                  opt_int(cleanup, 60, C.OPT_UINT)))
    rt.fn("MaxQPSIPRule", max_qps_ip)
    rt.fn("MaxQPSRule", lambda q, b=None, *a: sel(S.MaxQPSRule(as_int(q, C.UINT),
                                                               opt_int(b, 0) or None)))

    def two_ints(cls: type, target: str) -> Callable:
        def make(*a: Any) -> RuleHandle:
            return sel(cls(as_int(a[0], target), as_int(a[1], target)))
        return make
    rt.fn("QNameLabelsCountRule", two_ints(S.QNameLabelsCountRule, C.UINT))
    rt.fn("QNameWireLengthRule", two_ints(S.QNameWireLengthRule, C.ULONG))

    def records_count(*a: Any) -> RuleHandle:
        return sel(S.RecordsCountRule(as_int(a[0], C.UINT8), as_int(a[1], C.UINT16),
                                      as_int(a[2], C.UINT16)))
    rt.fn("RecordsCountRule", records_count)

    def records_type_count(*a: Any) -> RuleHandle:
        return sel(S.RecordsTypeCountRule(as_int(a[0], C.UINT8), as_int(a[1], C.UINT16),
                                          as_int(a[2], C.UINT16), as_int(a[3], C.UINT16)))
    rt.fn("RecordsTypeCountRule", records_type_count)
    rt.fn("ProbaRule", lambda p, *a: sel(S.ProbaRule(as_float(p, C.DOUBLE))))

    def lua_rule(cls: type, label: str) -> Callable:
        def make(f: Any, *a: Any) -> RuleHandle:
            if not is_function(f):
                raise fail(f, C.LUA_RULE_FUNC)

            _, plain, _, disarm = guarded(rt)
            handle, slot = shared_handle(rt, DQHandle)

            def call(dq: Any, _f: Any = f) -> bool:
                handle._dq = dq
                try:
                    return bool(plain(_f, slot))
                except Exception as e:
                    disarm()
                    rt.log(f"{label} failed inside Lua: {e}")
                    return False
            return sel(cls(call))
        return make
    rt.fn("LuaRule", lua_rule(S.LuaRule, "LuaRule"))

    # LuaFFIRule, LuaFFIPerThreadRule: luaapi/bindings/ffi_rules.py
    rt.fn("PoolAvailableRule", lambda p, *a: sel(S.PoolAvailableRule(reg, as_str(p, C.STRING))))
    rt.fn("PoolOutstandingRule", lambda p, n, *a: sel(S.PoolOutstandingRule(
        reg, as_str(p, C.STRING), as_int(n, C.ULONG))))

    def tag_rule(tag: Any, value: Any = None, *a: Any) -> RuleHandle:
        return sel(S.TagRule(as_str(tag, C.STRING),
                             None if value is None else as_str(value, C.OPT_STRING)))
    rt.fn("TagRule", tag_rule)
    rt.fn("RCodeRule", lambda r, *a: sel(S.RCodeRule(as_int(r, C.UINT8))))
    rt.fn("ERCodeRule", lambda r, *a: sel(S.ERCodeRule(as_int(r, C.UINT8))))
    rt.fn("EDNSVersionRule", lambda v, *a: sel(S.EDNSVersionRule(as_int(v, C.UINT8))))
    rt.fn("EDNSOptionRule", lambda c, *a: sel(S.EDNSOptionRule(as_int(c, C.UINT16))))
    # transports: DoT's SNI, DoH's request
    rt.fn("SNIRule", lambda n, *a: sel(S.SNIRule(as_str(n, C.STRING))))
    rt.fn("HTTPPathRule", lambda p, *a: sel(H.HTTPPathRule(as_str(p, C.STRING))))
    rt.fn("HTTPPathRegexRule", lambda p, *a: sel(H.HTTPPathRegexRule(as_str(p, C.STRING))))
    rt.fn("HTTPHeaderRule", lambda h, v, *a: sel(H.HTTPHeaderRule(as_str(h, C.STRING),
                                                                  as_str(v, C.STRING))))

    def ppv_rule(t: Any, v: Any = None, *a: Any) -> RuleHandle:
        value = None if v is None else as_str(v, C.OPT_STRING).encode("latin-1")
        return sel(S.ProxyProtocolValueRule(as_int(t, C.UINT8), value))
    rt.fn("ProxyProtocolValueRule", ppv_rule)

    # --- actions
    rt.fn("DropAction", lambda *a: act(A.DropAction()))
    rt.fn("AllowAction", lambda *a: act(A.AllowAction()))
    rt.fn("NoneAction", lambda *a: act(A.NoneAction()))
    rt.fn("PoolAction", lambda p, *a: act(A.PoolAction(as_str(p, C.STRING))))
    rt.fn("QPSPoolAction",
          lambda q, p, *a: act(A.QPSPoolAction(as_int(q, C.INT), as_str(p, C.STRING))))
    rt.fn("QPSAction", lambda q, *a: act(A.QPSAction(as_int(q, C.INT))))
    rt.fn("RCodeAction", lambda r, o=None, *a: act(A.RCodeAction(as_int(r, C.UINT8),
                                                                 response_config(o))))
    rt.fn("ERCodeAction", lambda r, o=None, *a: act(A.ERCodeAction(as_int(r, C.UINT8),
                                                                   response_config(o))))
    rt.fn("TCAction", lambda *a: act(A.TCAction()))
    for name in ("NoRecurseAction", "SetNoRecurseAction"):
        rt.fn(name, lambda *a: act(A.SetNoRecurseAction()))
    for name in ("DisableValidationAction", "SetDisableValidationAction"):
        rt.fn(name, lambda *a: act(A.SetDisableValidationAction()))
    for name in ("SkipCacheAction", "SetSkipCacheAction"):
        rt.fn(name, lambda *a: act(A.SetSkipCacheAction()))
    for name in ("TagAction", "SetTagAction"):
        rt.fn(name, lambda k, v, *a: act(A.SetTagAction(as_str(k, C.STRING), as_str(v, C.STRING))))
    for name in ("TempFailureCacheTTLAction", "SetTempFailureCacheTTLAction"):
        rt.fn(name, lambda t, *a: act(A.SetTempFailureCacheTTLAction(as_int(t, C.INT))))
    for name in ("ECSOverrideAction", "SetECSOverrideAction"):
        rt.fn(name, lambda b, *a: act(A.SetECSOverrideAction(as_bool(b, C.BOOL))))
    for name in ("ECSPrefixLengthAction", "SetECSPrefixLengthAction"):
        rt.fn(name, lambda v4, v6, *a: act(A.SetECSPrefixLengthAction(as_int(v4, C.UINT16),
                                                                      as_int(v6, C.UINT16))))
    for name in ("DisableECSAction", "SetDisableECSAction"):
        rt.fn(name, lambda *a: act(A.SetDisableECSAction()))
    rt.fn("DelayAction", lambda ms, *a: act(A.DelayAction(as_int(ms, C.INT))))

    def continue_action(x: Any, *a: Any) -> ActionHandle:
        if not isinstance(x, ActionHandle) or x.act.response:
            raise fail(x, C.DNSACTION)
        return act(A.ContinueAction(x.act))
    rt.fn("ContinueAction", continue_action)

    def spoof_action(ips: Any, opts: Any = None, *a: Any) -> ActionHandle:
        items = [as_str(x) for x in table_to_list(ips)] if is_table(ips) else [as_str(ips)]
        bad = next((x for x in items if not _is_address(x)), None)
        if bad is not None:   # 1.7.3 takes addresses only (SpoofCNAMEAction for names)
            raise PdnsError(f"Unable to convert presentation address '{bad}'")
        return act(A.SpoofAction(items, config=response_config(opts)))
    rt.fn("SpoofAction", spoof_action)
    rt.fn("SpoofCNAMEAction", lambda n, o=None, *a: act(
        A.SpoofAction(cname=to_dnsname(n, C.STRING), config=response_config(o))))

    def spoof_raw(raw: Any, opts: Any = None, *a: Any) -> ActionHandle:
        items = table_to_list(raw) if is_table(raw) else [raw]
        return act(A.SpoofRawAction([as_str(x).encode("latin-1") for x in items],
                                    response_config(opts)))
    rt.fn("SpoofRawAction", spoof_raw)

    def log_action(path: Any = None, binary: Any = None, append: Any = None, buffered: Any = None,
                   verbose_only: Any = None, timestamps: Any = None, *a: Any) -> ActionHandle:
        p = "" if path is None else as_str(path, C.STRING)
        flags = [as_bool(v, C.OPT_BOOL) if v is not None else d for v, d in (
            (binary, True), (append, False), (buffered, False), (verbose_only, True),
            (timestamps, False))]
        try:
            return act(A.LogAction(p, *flags, log=rt.log,
                                   verbose=lambda: reg.settings.verbose))
        except OSError as e:
            raise DnsdistError(f"Unable to open file '{p}' for logging: {e.strerror}") from None
    rt.fn("LogAction", log_action)

    def lua_action(cls: type, label: str) -> Callable:
        def make(f: Any, *a: Any) -> ActionHandle:
            if not is_function(f):
                raise fail(f, C.LUA_ACTION_FUNC)

            return act(cls(lua_verdict_caller(rt, f, label, DQHandle, A.SERVFAIL, A.NONE)))
        return make
    rt.fn("LuaAction", lua_action(A.LuaAction, "LuaAction"))

    # LuaFFIAction, LuaFFIPerThreadAction: luaapi/bindings/ffi_rules.py

    def neg_soa(*a: Any) -> ActionHandle:
        nxd, zone, ttl, mname, rname, numbers = negative_args(a)
        return act(MA.NegativeAndSOAAction(nxd, zone, ttl, mname, rname, numbers,
                                           response_config(a[10] if len(a) > 10 else None)))
    rt.fn("NegativeAndSOAAction", neg_soa)
    rt.fn("SetNegativeAndSOAAction", neg_soa)
    rt.fn("SetEDNSOptionAction", lambda code, data, *a: act(MA.SetEDNSOptionAction(
        as_int(code, C.INT), as_str(data, C.STRING).encode("latin-1"))))

    def tee(addr: Any, add_ecs: Any = None, *a: Any) -> ActionHandle:
        try:
            host, port = parse_address(as_str(addr, C.STRING), 53)
        except AddressError as e:
            raise DnsdistError(str(e)) from None
        return act(MA.TeeAction(host, port, False if add_ecs is None
                                else as_bool(add_ecs, C.OPT_BOOL)))
    rt.fn("TeeAction", tee)
    def set_ecs(v4: Any, v6: Any = None, *a: Any) -> ActionHandle:
        try:
            return act(A.SetECSAction(as_str(v4, C.STRING),
                                      None if v6 is None else as_str(v6, C.OPT_STRING)))
        except ValueError as e:
            raise PdnsError(f"Unable to convert '{v4}' to a netmask") from e
    rt.fn("SetECSAction", set_ecs)

    def svc_parameters(priority: Any, target: Any, opts: Any = None,
                       *a: Any) -> SVCParametersHandle:
        d = {}
        for k, v in table_to_dict(opts).items():
            d[as_str(k)] = table_to_list(v) if is_table(v) else v
        try:
            return SVCParametersHandle(SVC.make_parameters(as_int(priority, C.UINT16),
                                                           to_dnsname(target, C.STRING), d))
        except ValueError as e:
            raise DnsdistError(str(e)) from None
    rt.fn("newSVCRecordParameters", svc_parameters)

    def spoof_svc(records: Any, opts: Any = None, *a: Any) -> ActionHandle:
        items = table_to_list(records) if is_table(records) else [records]
        params = [x.params for x in items if isinstance(x, SVCParametersHandle)]
        return act(SVC.SpoofSVCAction(params, response_config(opts)))
    rt.fn("SpoofSVCAction", spoof_svc)
    for name in ("MacAddrAction", "SetMacAddrAction"):
        rt.fn(name, lambda code, *a: act(MA.SetMacAddrAction(as_int(code, C.INT))))

    # --- the chains
    for key, infix, add_name, response in CHAINS:
        _register_chain(rt, key, infix, add_name, response)

    def make_rule(v: Any, *a: Any) -> RuleHandle:
        return sel(selector_arg(v))
    rt.fn("makeRule", make_rule)

    def new_rule_action(s: Any, x: Any, params: Any = None, *a: Any) -> RuleActionHandle:
        if not isinstance(x, ActionHandle):
            raise fail(x, C.DNSACTION)
        name, uuid = rule_params(params)
        return RuleActionHandle(Rule(selector_arg(s), x.act, name, uuid))
    rt.fn("newRuleAction", new_rule_action)

    def set_rules(t: Any, *a: Any) -> None:
        if not is_table(t):
            raise fail(t, C.RULE_ACTION_LIST)
        rules = []
        for r in table_to_list(t):
            if not isinstance(r, RuleActionHandle):
                raise fail(t, C.RULE_ACTION_LIST)
            if r.rule.action.response:
                raise DnsdistError("setRules() can only be called with query-related actions")
            rules.append(r.rule)
        for rule in rules:
            note_unsupported(rt, "setRules", rule)
        reg.rules["query"].set(rules)
    rt.fn("setRules", set_rules)

    def get_action(n: Any, *a: Any) -> Any:
        rules = reg.rules["query"].rules
        i = as_int(n, C.UINT)
        return ActionHandle(rules[i].action) if 0 <= i < len(rules) else None
    rt.fn("getAction", get_action, no_side_effect=True)


def note_unsupported(rt: Any, fname: str, rule: Rule) -> None:
    """Parts of a rule pydist cannot carry out: warned once at startup (registry.unsupported),
    or at once when the rule is added from the console."""
    reg = rt.registry
    for part in unsupported_parts(rule):
        item = f"{part} in {fname}()"
        if reg.config_done:
            line = f"Warning: {item} is accepted but not carried out by pydist yet"
            rt.log(line)
            rt.show(line + "\n")
        elif item not in reg.unsupported:
            reg.unsupported.append(item)


def _register_chain(rt: Any, key: str, infix: str, add_name: str, response: bool) -> None:
    rt = ArityCheckedRuntime(rt) if not isinstance(rt, ArityCheckedRuntime) else rt
    reg = rt.registry
    chain = reg.rules[key]

    def add(s: Any = None, x: Any = None, params: Any = None, *a: Any) -> None:
        selector = selector_arg(s)
        action = action_arg(x, add_name, response)
        name, uuid = rule_params(params)
        rule = Rule(selector, action, name, uuid)
        note_unsupported(rt, add_name, rule)
        chain.add(rule)
    rt.fn(add_name, add)

    def show(opts: Any = None, *a: Any) -> None:
        if opts is not None and not is_table(opts):
            raise fail(opts, C.SHOW_RULES_OPTIONS)
        d = table_to_dict(opts)
        lines = chain.show(bool(d.get("showUUIDs")), as_int(d["truncateRuleWidth"])
                           if d.get("truncateRuleWidth") is not None else -1)
        for line in lines:
            rt.show(line + "\n")
    rt.fn(f"show{infix}Rules", show, no_side_effect=True)

    def rm(which: Any, *a: Any) -> None:
        w = (which if isinstance(which, str) and not which.isdigit()
             else as_int(which, C.UINT_OR_STRING))
        try:
            chain.remove(w)
        except ChainError as e:
            rt.show(f"{e}\n")
    rt.fn(f"rm{infix}Rule", rm)

    def mv(src: Any, dst: Any, *a: Any) -> None:
        try:
            chain.move(as_int(src, C.UINT), as_int(dst, C.UINT))
        except ChainError as e:
            rt.show(f"{e}\n")
    rt.fn(f"mv{infix}Rule", mv)
    rt.fn(f"mv{infix}RuleToTop", lambda *a: chain.to_top())
    if key in ("query",):
        rt.fn("clearRules", lambda *a: chain.clear())

    def top(n: Any = None, *a: Any) -> None:
        count = 10 if n is None else as_int(n, C.OPT_UINT)
        rules = list(chain.rules)
        std_sort(rules, lambda x, y: y.matches < x.matches)   # dnsdist's (unstable) order
        rules = rules[:count]
        for line in _show_subset(rules):
            rt.show(line + "\n")
        rt.show("\n")    # dnsdist's top*Rules() end with an empty line
    top_names = {"query": ("topRules",), "response": ("topResponseRules",),
                 "cachehit": ("topCacheHitRules", "topCacheHitResponseRules"),
                 "selfanswered": ("topSelfAnsweredResponseRules",)}[key]
    for top_name in top_names:
        rt.fn(top_name, top, no_side_effect=True)

    def get_top(n: Any = None, *a: Any) -> Any:
        """getTop*Rules(n): the rules as opaque objects, in topRules() order."""
        rules = list(chain.rules)
        std_sort(rules, lambda x, y: y.matches < x.matches)
        count = 10 if n is None else as_int(n, C.OPT_UINT)
        return rt.lua.table_from([RuleActionHandle(r) for r in rules[:count]])
    rt.fn(f"getTop{infix}Rules", get_top, no_side_effect=True)
    if key == "cachehit":
        rt.fn("getCacheHitResponseRules",
              lambda *a: rt.lua.table_from([RuleActionHandle(r) for r in chain.rules]),
              no_side_effect=True)


def _show_subset(rules: list[Rule]) -> list[str]:
    from pydist.rules.chain import RuleChain
    c = RuleChain("view")
    c.rules = tuple(rules)
    return c.show()


def _lua_bytes(value: Any) -> bytes:
    """A Lua string's bytes (Lua strings reach Python as latin-1 text or bytes)."""
    return value if isinstance(value, bytes) else str(as_str(value)).encode("latin-1", "replace")
