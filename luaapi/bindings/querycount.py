"""setQueryCount, setQueryCountFilter, getQueryCounters, clearQueryCounters (the engine side is
pydist/querycount.py). The filter is a Lua function(dq) returning (count?, key), run under the
same CPU guard as Lua rules."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.luacall import guarded, shared_handle
from luaapi.bindings.rules import DQHandle
from luaapi.convert import as_bool, as_int, fail, is_function

FILTER_FUNC = "St8functionIFSt5tupleIJbNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEEEPK11DNSQuestionEE"


def register(rt: Any) -> None:
    reg = rt.registry
    counter = reg.query_counter

    def refresh() -> None:
        reg.changed()      # counting decides whether the cache fast path may run

    def set_query_count(on: Any = None, *a: Any) -> None:
        counter.enabled = as_bool(on)
        refresh()
    rt.fn("setQueryCount", set_query_count)

    def set_filter(f: Any = None, *a: Any) -> None:
        if not is_function(f):
            raise fail(f, FILTER_FUNC)
        _, plain, _, disarm = guarded(rt)
        handle, slot = shared_handle(rt, DQHandle)

        def call(dq: Any, _f: Any = f) -> tuple[bool, str]:
            handle._dq = dq
            try:
                res = plain(_f, slot)
            except Exception:
                disarm()
                raise
            keep, key = res if isinstance(res, tuple) else (res, "")
            return bool(keep), str(key)
        counter.filter = call
    rt.fn("setQueryCountFilter", set_filter)

    rt.fn("getQueryCounters", lambda n=None, *a: rt.show(
        counter.report(10 if n is None else as_int(n))), no_side_effect=True)
    rt.fn("clearQueryCounters", lambda *a: rt.show(counter.clear()))
