"""Dynamic blocks from Lua (dynBlockRulesGroup, addDynBlocks, exceed*): kept, not yet enforced."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.compat import unsupported
from luaapi.bindings.misc import runtime_refused
from luaapi.convert import as_int, as_str, is_table, table_to_list

ACTION_TEXT = {0: "Drop", 1: "Send NXDomain", 2: "Send Refused", 8: "Truncate over UDP",
               12: "Set rd=0", 11: "Do nothing", 10: "Do nothing"}


class DynBlockRulesGroupHandle:
    """dynBlockRulesGroup(): the rules are recorded; apply() does nothing yet."""

    def __init__(self) -> None:
        self.rules: list[tuple] = []
        self.excluded: list[str] = []
        self.included: list[str] = []
        self.quiet = False

    def _add(self, kind: str, a: tuple, least: int) -> None:
        if len(a) < least:
            from luaapi.errors import LuaArgError
            raise LuaArgError(f"This function requires at least {least} parameter(s)")
        self.rules.append((kind,) + tuple(a))

    def setQueryRate(self, *a: Any) -> None: self._add("query", a, 4)
    def setResponseByteRate(self, *a: Any) -> None: self._add("bytes", a, 4)
    def setRCodeRate(self, *a: Any) -> None: self._add("rcode", a, 5)
    def setRCodeRatio(self, *a: Any) -> None: self._add("rcode-ratio", a, 6)
    def setQTypeRate(self, *a: Any) -> None: self._add("qtype", a, 5)
    def setSuffixMatchRule(self, *a: Any) -> None: self._add("smt", a, 5)
    def setSuffixMatchRuleFFI(self, *a: Any) -> None: self._add("smt-ffi", a, 5)
    def setMasks(self, *a: Any) -> None: pass
    def setQuiet(self, q: Any = True, *a: Any) -> None: self.quiet = bool(q)

    def _ranges(self, v: Any) -> list[str]:
        if is_table(v):
            return [as_str(x) for x in table_to_list(v)]
        if hasattr(v, "nmg"):
            return v.nmg.to_strings()
        return [as_str(v)]

    def excludeRange(self, v: Any, *a: Any) -> None: self.excluded += self._ranges(v)
    def includeRange(self, v: Any, *a: Any) -> None: self.included += self._ranges(v)
    def excludeDomains(self, v: Any, *a: Any) -> None: pass
    def apply(self, *a: Any) -> None: pass

    def toString(self, *a: Any) -> str:
        return ""

    tostring = toString


def register(rt: Any) -> None:
    reg = rt.registry

    def group(*a: Any) -> DynBlockRulesGroupHandle:
        g = DynBlockRulesGroupHandle()
        reg.dynblock_groups.append(g)
        return g
    unsupported(rt, "dynBlockRulesGroup", group)
    for name in ("exceedQRate", "exceedRespByterate", "exceedServFails", "exceedNXDOMAINs"):
        rt.fn(name, lambda rate, seconds, *a: rt.lua.table())
    rt.fn("exceedQTypeRate", lambda t, rate, seconds, *a: rt.lua.table())
    unsupported(rt, "addDynBlocks", lambda m, msg, *a: None)
    unsupported(rt, "addDynBlockSMT", lambda names, msg, *a: None)

    def set_action(a: Any, *rest: Any) -> None:
        if runtime_refused(rt, "setDynBlocksAction"):
            return
        reg.dynblocks_action = as_int(a)
    rt.fn("setDynBlocksAction", set_action)
    rt.fn("setDynBlocksPurgeInterval", lambda s, *a: None)
    rt.fn("clearDynBlocks", lambda *a: None)

    def show(*a: Any) -> None:
        rt.show(f"{'What':<24} {'Seconds':>8} {'Blocks':>8} {'Warning':<10} {'Action':<20} Reason\n")
    rt.fn("showDynBlocks", show, no_side_effect=True)
    _ = ACTION_TEXT
