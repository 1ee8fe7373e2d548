"""pydist's own reload functions (pydist/reload): `pydist.reload()` and `pydist.lastReload()`
on the console, `pydist.watchConfig(enabled [, maxDelay])` in the config or on the console."""
from __future__ import annotations

import time
from typing import Any

from luaapi.bindings.pydist_ns import add
from luaapi.convert import as_bool, as_float
from luaapi.errors import DnsdistError


def register(rt: Any) -> None:
    reg = rt.registry

    def reload(*a: Any) -> None:
        """Evaluate the config file again and swap it in; prints the summary or the error."""
        if reg.reload_control is None:
            raise DnsdistError("pydist.reload() can only be used on the console of a running "
                               "pydist")
        rt.show(reg.reload_control.reload().text())
    add(rt, "reload", reload)

    def last_reload(*a: Any) -> None:
        """The last reload's result, as pydist.reload() printed it (and when)."""
        last = reg.reload_control.last() if reg.reload_control is not None else None
        if last is None:
            rt.show("No reload yet\n")
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.when))
        rt.show(f"{stamp} {last.text()}")
    add(rt, "lastReload", last_reload)

    def watch_config(enabled: Any = None, max_delay: Any = None, *a: Any) -> None:
        """Reload when the config file or an includeDirectory() file changes, after a
        random delay of up to maxDelay seconds (5 by default)."""
        reg.reload_settings.watch = as_bool(enabled) if enabled is not None else True
        if max_delay is not None:
            reg.reload_settings.max_delay = max(0.0, as_float(max_delay))
    add(rt, "watchConfig", watch_config)
