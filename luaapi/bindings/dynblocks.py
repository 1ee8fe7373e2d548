"""Dynamic blocks from Lua (dnsdist-lua.cc, dnsdist-lua-inspection.cc, dnsdist-dynblocks):
dynBlockRulesGroup, addDynBlocks, addDynBlockSMT, the exceed* functions, showDynBlocks and the
once-a-second call of the config's maintenance() function."""
from __future__ import annotations

import time
from typing import Any, Callable

from luaapi.bindings.ffi_shim import shim
from luaapi.bindings.misc import runtime_refused
from luaapi.bindings.objects import ComboAddressHandle, NMGHandle, to_dnsname
from luaapi.convert import (as_float, as_int, as_str, fail, is_function, is_table, table_items,
                            table_to_list)
from luaapi.bindings.frontends import netmask_list
from luaapi.errors import LuaArgError
from pydist.dns.wire import qtype_to_text
from pydist.dynblock_rules import (DynBlockRulesGroup, RateRule, Stat, StatNode, SuffixRule,
                                   response_tree)
from pydist.dynblocks import (ACTION_TEXT, DROP, NONE, NOOP, NORECURSE, NXDOMAIN, REFUSED,
                              TRUNCATE, count_queries, count_responses, host_network, over_rate)
from pydist.rules.selectors import rcode_text

ALLOWED_ACTIONS = (DROP, NOOP, NXDOMAIN, REFUSED, TRUNCATE, NORECURSE)
MAINTENANCE_ERROR_EVERY = 60.0     # seconds between two logs of a failing maintenance()


def _nargs(a: tuple, least: int) -> None:
    if len(a) < least:
        raise LuaArgError(f"This function requires at least {least} parameter(s)")


def _opt_action(v: Any) -> int:
    return NONE if v is None else as_int(v)


def _opt_float(v: Any) -> float:
    return 0.0 if v is None else as_float(v)


class DynBlockRulesGroupHandle:
    """dynBlockRulesGroup() as Lua holds it; the rate logic lives in pydist.dynblock_rules."""

    def __init__(self, group: DynBlockRulesGroup, rt: Any) -> None:
        self.group = group
        self.rt = rt
        self.excluded_domains: list[str] = []
        self.smt_text = ""

    def setQueryRate(self, *a: Any) -> None:
        _nargs(a, 4)
        self.group.add(RateRule("query", as_float(a[0]), as_int(a[1]), as_str(a[2]),
                                as_int(a[3]), _opt_action(a[4] if len(a) > 4 else None),
                                _opt_float(a[5] if len(a) > 5 else None)))

    def setResponseByteRate(self, *a: Any) -> None:
        _nargs(a, 4)
        self.group.add(RateRule("bytes", as_float(a[0]), as_int(a[1]), as_str(a[2]),
                                as_int(a[3]), _opt_action(a[4] if len(a) > 4 else None),
                                _opt_float(a[5] if len(a) > 5 else None)))

    def setRCodeRate(self, *a: Any) -> None:
        _nargs(a, 5)
        self.group.add(RateRule("rcode", as_float(a[1]), as_int(a[2]), as_str(a[3]),
                                as_int(a[4]), _opt_action(a[5] if len(a) > 5 else None),
                                _opt_float(a[6] if len(a) > 6 else None), as_int(a[0])))

    def setRCodeRatio(self, *a: Any) -> None:
        _nargs(a, 6)
        self.group.add(RateRule("rcode-ratio", as_float(a[1]), as_int(a[2]), as_str(a[3]),
                                as_int(a[4]), _opt_action(a[6] if len(a) > 6 else None),
                                _opt_float(a[7] if len(a) > 7 else None), as_int(a[0]),
                                as_int(a[5])))

    def setQTypeRate(self, *a: Any) -> None:
        _nargs(a, 5)
        self.group.add(RateRule("qtype", as_float(a[1]), as_int(a[2]), as_str(a[3]),
                                as_int(a[4]), _opt_action(a[5] if len(a) > 5 else None),
                                _opt_float(a[6] if len(a) > 6 else None), as_int(a[0])))

    def setSuffixMatchRule(self, *a: Any) -> None:
        _nargs(a, 5)
        if not is_function(a[4]):
            raise fail(a[4], "St8functionIFSt5tupleIJbN5boost8optionalINSt7__cxx1112basic_"
                             "stringIcSt11char_traitsIcESaIcEEEEEEERK8StatNodeRKNS9_4StatESF_EE")
        self.group.suffix_rule = SuffixRule(as_int(a[0]), as_str(a[1]), as_int(a[2]),
                                            _opt_action(a[3]), _lua_visitor(a[4]))

    def setSuffixMatchRuleFFI(self, *a: Any) -> None:
        _nargs(a, 5)
        if not is_function(a[4]):
            raise fail(a[4], "St8functionIFbP23dnsdist_ffi_stat_node_tEE")
        self.group.suffix_rule = SuffixRule(as_int(a[0]), as_str(a[1]), as_int(a[2]),
                                            _opt_action(a[3]), _ffi_visitor(self.rt, a[4]))

    def setMasks(self, v4: Any = 32, v6: Any = 128, port: Any = 0, *a: Any) -> None:
        self.group.masks = (as_int(v4), as_int(v6), as_int(port))

    def setQuiet(self, q: Any = True, *a: Any) -> None:
        self.group.quiet = bool(q)

    def _ranges(self, v: Any) -> list[str]:
        if isinstance(v, NMGHandle):
            return v.nmg.to_strings()
        return netmask_list(v)

    def excludeRange(self, v: Any, *a: Any) -> None:
        for m in self._ranges(v):
            self.group.excluded.add(m)

    def includeRange(self, v: Any, *a: Any) -> None:
        for m in self._ranges(v):
            self.group.included.add(m)

    def excludeDomains(self, v: Any, *a: Any) -> None:
        items = table_to_list(v) if is_table(v) else [v]
        for x in items:
            name = to_dnsname(x)
            self.excluded_domains.append(str(name))
            self.group.excluded_domains.add(name)

    def apply(self, *a: Any) -> None:
        self.group.apply()

    def toString(self, *a: Any) -> str:
        return group_text(self.group, self.excluded_domains)

    tostring = toString


class StatNodeHandle:
    """The node a visitor gets: fullname, labelsCount, numChildren()."""

    LUA_FIELDS = ("fullname", "labelsCount")

    def __init__(self, node: StatNode) -> None:
        self.fullname = node.fullname
        self.labelsCount = node.labels_count
        self._children = len(node.children)

    def numChildren(self, *a: Any) -> int:
        return self._children


class StatHandle:
    """The counts a visitor gets (own ones, and the node's with all below it)."""

    LUA_FIELDS = ("queries", "noerrors", "nxdomains", "servfails", "drops", "bytes")

    def __init__(self, stat: Stat) -> None:
        self.queries, self.noerrors, self.nxdomains = stat.queries, stat.noerrors, stat.nxdomains
        self.servfails, self.drops, self.bytes = stat.servfails, stat.drops, stat.bytes


def _lua_visitor(f: Any) -> Callable[[StatNode, Stat, Stat], tuple[bool, str | None]]:
    """visitor(node, self, children) -> block[, reason], called from Lua's side of apply()."""
    def visit(node: StatNode, own: Stat, total: Stat) -> tuple[bool, str | None]:
        res = f(StatNodeHandle(node), StatHandle(own), StatHandle(total))
        if not isinstance(res, tuple):
            res = (res,)
        block = bool(res[0]) if res else False
        reason = res[1] if len(res) > 1 and isinstance(res[1], str) else None
        return block, reason
    return visit


def _ffi_visitor(rt: Any, f: Any) -> Callable[[StatNode, Stat, Stat], tuple[bool, str | None]]:
    """visitor(node pointer) -> block, reading the node through the FFI shim's
    dnsdist_ffi_stat_node_* accessors; the rule's own reason is the block's (1.7.3 has no
    FFI setter for it)."""
    g = shim(rt).smt_visitor(f)

    def visit(node: StatNode, own: Stat, total: Stat) -> tuple[bool, str | None]:
        fields = {"fullname": node.fullname, "labels": node.labels_count,
                  "children": len(node.children)}
        for name in ("queries", "noerrors", "nxdomains", "servfails", "drops"):
            fields[name] = getattr(own, name)
            fields["children_" + name] = getattr(total, name)
        return bool(g(rt.lua.table_from(fields))), None
    return visit


def _rule_text(r: RateRule) -> str:
    what = ("Apply the global DynBlock action" if r.action == NONE
            else ACTION_TEXT.get(r.action, "Drop"))
    over = f"{r.rate:f} ratio" if r.kind == "rcode-ratio" else f"{r.rate:g}"
    return (f"{what} for {r.duration} seconds when over {over} during the last {r.seconds} "
            f"seconds, reason: '{r.reason}'")


def group_text(g: DynBlockRulesGroup, excluded_domains: list[str]) -> str:
    """toString() of a group, laid out as dnsdist 1.7.3 prints it."""
    by_kind = {r.kind: r for r in g.rules if r.kind in ("query", "bytes")}
    lines = [f"Query rate rule: {_rule_text(by_kind['query']) if 'query' in by_kind else ''}",
             f"Response rate rule: {_rule_text(by_kind['bytes']) if 'bytes' in by_kind else ''}",
             "SuffixMatch rule: " + (_rule_text(RateRule(
                 "smt", 0, g.suffix_rule.seconds, g.suffix_rule.reason, g.suffix_rule.duration,
                 g.suffix_rule.action)) if g.suffix_rule is not None else ""),
             "RCode rules: "]
    lines += [f"- {rcode_text(r.arg or 0)}: {_rule_text(r)}" for r in g.rules
              if r.kind in ("rcode", "rcode-ratio")]
    lines.append("QType rules: ")
    lines += [f"- {qtype_to_text(r.arg or 0)}: {_rule_text(r)}" for r in g.rules
              if r.kind == "qtype"]
    subnets = ["!" + m for m in g.included.to_strings()] + g.excluded.to_strings()
    lines.append("Excluded Subnets: " + ", ".join(subnets))
    lines.append("Excluded Domains: " + ", ".join(excluded_domains))
    return "\n".join(lines) + "\n"


def register(rt: Any) -> None:
    reg = rt.registry
    blocks = reg.dynblocks

    def group(*a: Any) -> DynBlockRulesGroupHandle:
        g = DynBlockRulesGroup(blocks, rings=lambda: reg.rings)
        reg.dynblock_groups.append(g)
        return DynBlockRulesGroupHandle(g, rt)
    rt.fn("dynBlockRulesGroup", group)

    def stat_node_resp_ring(visitor: Any, seconds: Any = None, *a: Any) -> None:
        """statNodeRespRing(visitor[, seconds]): the visitor on every name of the response
        ring's tree (the last `seconds`, all when 0 or absent), its answer ignored."""
        if not is_function(visitor):
            raise fail(visitor, "St8functionIFvRK8StatNodeRKNS0_4StatES4_EE")
        if reg.rings is None:
            return
        tree = response_tree(reg.rings, as_int(seconds) if seconds is not None else 0,
                             time.time())
        tree.visit(lambda node, own, total: visitor(StatNodeHandle(node), StatHandle(own),
                                                    StatHandle(total)))
    rt.fn("statNodeRespRing", stat_node_resp_ring)

    def exceed(counter: Callable[[Any, int, float], Any], responses: bool) -> Callable:
        def run(rate: Any, seconds: Any, *a: Any) -> Any:
            if reg.rings is None:
                return rt.lua.table()
            now = time.time()
            s = as_int(seconds)
            hits = over_rate(counter(reg.rings, s, now), as_float(rate), s, reg.rings, now,
                             responses)
            return rt.lua.table_from({ComboAddressHandle(str(n.network_address), 0): c
                                      for n, c in hits.items()})
        return run
    rt.fn("exceedQRate", exceed(lambda r, s, n: count_queries(r, s, n), False))
    rt.fn("exceedRespByterate", exceed(lambda r, s, n: count_responses(r, s, n, None, True), True))
    rt.fn("exceedServFails", exceed(lambda r, s, n: count_responses(r, s, n, 2), True))
    rt.fn("exceedNXDOMAINs", exceed(lambda r, s, n: count_responses(r, s, n, 3), True))

    def exceed_qtype(qtype: Any, rate: Any, seconds: Any, *a: Any) -> Any:
        t = as_int(qtype)
        return exceed(lambda r, s, n: count_queries(r, s, n, t), False)(rate, seconds)
    rt.fn("exceedQTypeRate", exceed_qtype)

    def add_dyn_blocks(m: Any = None, msg: Any = None, seconds: Any = None, action: Any = None,
                       *a: Any) -> None:
        reason = as_str(msg)
        secs = 10 if seconds is None else as_int(seconds)
        now = time.time()
        for key, _count in table_items(m):
            if not isinstance(key, ComboAddressHandle):
                continue
            blocks.insert_network(host_network(key.host), reason, secs, _opt_action(action), now)
    rt.fn("addDynBlocks", add_dyn_blocks)

    def add_dyn_block_smt(names: Any = None, msg: Any = None, seconds: Any = None,
                          action: Any = None, *a: Any) -> None:
        reason = as_str(msg)
        secs = 10 if seconds is None else as_int(seconds)
        now = time.time()
        for item in (table_to_list(names) if is_table(names) else [names]):
            name = to_dnsname(item)
            blocks.insert_name(name.key, str(name), reason, secs, _opt_action(action), now)
    rt.fn("addDynBlockSMT", add_dyn_block_smt)

    def set_action(a: Any, *rest: Any) -> None:
        if runtime_refused(rt, "setDynBlocksAction"):
            return
        v = as_int(a)
        if v not in ALLOWED_ACTIONS:
            rt.log("Dynamic blocks action can only be Drop, NoOp, NXDomain, Refused, Truncate "
                   "or NoRecurse!")
            return
        blocks.default_action = v
    rt.fn("setDynBlocksAction", set_action)
    rt.fn("setDynBlocksPurgeInterval",
          lambda s, *a: setattr(blocks, "purge_interval", as_int(s)))
    rt.fn("clearDynBlocks", lambda *a: blocks.clear())

    def show(*a: Any) -> None:
        for line in blocks.show(time.time()):
            rt.show(line + "\n")
    rt.fn("showDynBlocks", show, no_side_effect=True)


def make_maintenance(rt: Any) -> Callable[[], None]:
    """The engine's 1-s hook: call the global Lua maintenance() if the config defines one;
    a failing one is logged at most once a minute, as dnsdist does."""
    last_error = [0.0]

    def tick() -> None:
        f = rt.globals["maintenance"]
        if f is None:
            return
        try:
            f()
        except Exception as e:  # a Lua error, or one a binding raised under it
            now = time.monotonic()
            if now - last_error[0] >= MAINTENANCE_ERROR_EVERY or not last_error[0]:
                last_error[0] = now
                rt.log(f"Error during execution of maintenance function: {e}")
    return tick
