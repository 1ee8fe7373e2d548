"""TimedIPSetRule(): a set of client addresses with expiry times that Lua fills (typically
from a LuaAction that spots abuse) and a rule that matches its members, as dnsdist 1.7.3."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.objects import ComboAddressHandle
from luaapi.bindings.rules import RuleHandle
from luaapi.convert import as_int, fail
from pydist.rules import selectors as S

COMBO_ADDRESS = "12ComboAddress"


class TimedIPSetHandle:
    """What TimedIPSetRule() returns: add/clear/cleanup/slice; like dnsdist's, it has no
    toString of its own (its rule, from :slice(), does)."""

    def __init__(self) -> None:
        self.rule = S.TimedIPSetRule()

    def add(self, ca: Any = None, seconds: Any = None, *a: Any) -> None:
        if not isinstance(ca, ComboAddressHandle):
            raise fail(ca, COMBO_ADDRESS)
        self.rule.add(ca.host, as_int(seconds))

    def clear(self, *a: Any) -> None:
        self.rule.clear()

    def cleanup(self, *a: Any) -> None:
        self.rule.cleanup()

    def slice(self, *a: Any) -> RuleHandle:
        return RuleHandle(self.rule)


def register(rt: Any) -> None:
    rt.fn("TimedIPSetRule", lambda *a: TimedIPSetHandle())
