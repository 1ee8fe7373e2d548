"""Logging from Lua: dnsdist's setSyslogFacility, and pydist's own `pydist.setLogFormat`.
Both reach the registry's log sink (pydist.logs.LogSink) when there is one."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.misc import runtime_refused
from luaapi.bindings.pydist_ns import namespace
from luaapi.convert import as_str, fail
from luaapi.errors import DnsdistError
from pydist.logs import LogSink, facility_code

_VARIANT = ("N5boost7variantIiJNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEEEE")


def register(rt: Any) -> None:
    def sink() -> LogSink | None:
        log = rt.registry.log
        return log if isinstance(log, LogSink) else None

    def set_syslog_facility(value: Any = None, *a: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise fail(value, _VARIANT)
        if runtime_refused(rt, "setSyslogFacility"):
            return
        code = facility_code(value if isinstance(value, str) else int(value))
        if code is None:
            rt.show(f"Unknown facility '{as_str(value).lower()}' passed to setSyslogFacility()!\n")
            return
        target = sink()
        if target is not None and target.syslog is not None:
            target.syslog.set_facility(code)
    rt.fn("setSyslogFacility", set_syslog_facility)

    def set_log_format(name: Any = None, *a: Any) -> None:
        """pydist.setLogFormat("json"): stdout lines as JSON objects; "text" is dnsdist's."""
        target = sink()
        text = as_str(name)
        if target is None:
            return
        if not target.set_format(text):
            raise DnsdistError(f"Unknown log format '{text}', expected 'text' or 'json'")
    namespace(rt).setLogFormat = rt.wrap(set_log_format)
