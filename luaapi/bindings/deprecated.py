"""Action names dnsdist 1.7 renamed: the old ones still work and log its deprecation line."""
from __future__ import annotations

from typing import Any

RENAMED = {
    "NoRecurseAction": "SetNoRecurseAction",
    "DisableValidationAction": "SetDisableValidationAction",
    "SkipCacheAction": "SetSkipCacheAction",
    "DisableECSAction": "SetDisableECSAction",
    "ECSOverrideAction": "SetECSOverrideAction",
    "ECSPrefixLengthAction": "SetECSPrefixLengthAction",
    "MacAddrAction": "SetMacAddrAction",
    "TempFailureCacheTTLAction": "SetTempFailureCacheTTLAction",
    "TagAction": "SetTagAction",
    "TagResponseAction": "SetTagResponseAction",
    "SetNegativeAndSOAAction": "NegativeAndSOAAction",   # 1.7 went the other way for this one
}


def register(rt: Any) -> None:
    def deprecated(old: Any, new: Any) -> None:
        rt.log(f"access to {old} is deprecated and will be removed in a future version, "
               f"please use {new} instead")
    rt.fn("__pydist_deprecated", deprecated, no_side_effect=True)
    lines = []
    for old, new in RENAMED.items():
        if rt.globals[old] is None:
            continue
        # a tail call keeps the caller's frame, so argument errors still name the config line
        lines.append(f"do local f = {old}; {old} = function(...) "
                     f"__pydist_deprecated('{old}', '{new}') return f(...) end end")
    rt.run_code("\n".join(lines), "deprecated")
