"""reload_config: evaluate, check, diff, swap, count. Everything here runs on the loop's
thread in one call, so the swap happens between two queries."""
from __future__ import annotations

import time
import traceback
from typing import Any

from pydist.engine import SUPERVISOR
from pydist.reload import swap
from pydist.reload.check import close_sockets, prepare_listeners
from pydist.reload.diff import plan as make_plan
from pydist.reload.model import LoadedConfig, ReloadError, ReloadResult

def reload_config(engine: Any) -> ReloadResult:
    """Reload the engine's config file. The one entry point for every trigger (SIGHUP,
    pydist.reload(), the web API, the file watch; a worker process on a control message)."""
    started, when = time.monotonic(), time.time()
    log = engine.reg.log
    history = engine.reloads
    if history.running:        # pydist.reload() from a config being evaluated, say
        return _record(engine, ReloadResult(False, error="a reload is already running",
                                            when=when))
    history.running = True
    try:
        result = _reload(engine, log, when)
    finally:
        history.running = False
    result.seconds = time.monotonic() - started
    if result.ok:
        log(f"Configuration reloaded in {result.seconds * 1000:.1f} ms: {result.summary}")
    else:
        log(f"Configuration reload failed, the running configuration is kept: {result.error}")
    return _record(engine, result)


def _reload(engine: Any, log: Any, when: float) -> ReloadResult:
    loader = engine.config_loader
    if loader is None:
        return ReloadResult(False, error="no configuration file to reload from", when=when)
    loaded: LoadedConfig | None = None
    try:
        loaded = loader(log)
        plan = make_plan(engine.reg, loaded.registry)
        prepare_listeners(plan, log, reuse_port=getattr(engine, "role", None) == SUPERVISOR)
    except ReloadError as e:
        return ReloadResult(False, error=" / ".join(e.lines), when=when)
    except Exception as e:  # noqa: BLE001 -- a bad file must never end the process
        if loaded is not None:
            close_sockets(loaded.registry.frontends)
        log("".join(traceback.format_exception_only(type(e), e)).strip())
        return ReloadResult(False, error=f"{type(e).__name__}: {e}", when=when)
    swap.apply(engine, loaded, plan)
    return ReloadResult(True, summary=plan.summary(), details=plan.details(), when=when)


def _record(engine: Any, result: ReloadResult) -> ReloadResult:
    engine.reloads.record(result, engine.reg.stats)
    return result
