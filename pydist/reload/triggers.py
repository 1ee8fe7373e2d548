"""What starts a reload besides the console and the API: SIGHUP (dnsdist 1.7.3 dies of it:
no handler, the process ends), and the optional watch on the config file and the files
includeDirectory() read, checked once a second on the engine's tick."""
from __future__ import annotations

import os
import random
import signal
from typing import Any, Callable

from pydist.reload import reload_config

Fingerprint = tuple[tuple[str, int, int], ...]


def install_triggers(engine: Any, config_path: str) -> Callable[[], None]:
    """SIGHUP, the registry's hook (pydist.reload(), the web API) and the file watch, set
    before the engine starts (a SIGHUP during startup must not end the process); returns
    what to call once it has started."""
    engine.reg.reload_control = ReloadControl(engine)
    hup = SighupTrigger(engine)
    engine.loop.add_signal_handler(signal.SIGHUP, hup.received)
    engine.maintenance_hooks.append(ConfigWatch(engine, config_path).tick)
    return hup.started


class SighupTrigger:
    """A SIGHUP reloads; one received while the engine starts reloads once it has started."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.running = False
        self.asked = False

    def received(self) -> None:
        self.engine.reg.log("Received SIGHUP, reloading the configuration")
        if self.running:
            reload_config(self.engine)
        else:
            self.asked = True

    def started(self) -> None:
        self.running = True
        if self.asked:
            self.asked = False
            reload_config(self.engine)


class ReloadControl:
    """What the console and the web API are handed: reload now, or read the last result."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def reload(self) -> Any:
        return reload_config(self.engine)

    def last(self) -> Any:
        return self.engine.reloads.last


def config_files(config_path: str, directories: list[str]) -> Fingerprint:
    """(path, mtime ns, size) of the config file and every *.conf in the included
    directories, as includeDirectory() picks them: a file added or removed counts too."""
    paths = [config_path]
    for d in dict.fromkeys(directories):
        try:
            paths += sorted(os.path.join(d, f) for f in os.listdir(d)
                            if f.endswith(".conf") and not f.startswith("."))
        except OSError:
            paths.append(d)
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((p, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p, -1, -1))
    return tuple(out)


class ConfigWatch:
    """pydist.watchConfig(true): a change seen on a tick schedules one reload after a random
    delay (up to pydist.watchConfig's maxDelay), so a fleet does not reload in the same
    second; changes seen while one is scheduled join it."""

    def __init__(self, engine: Any, config_path: str,
                 rand: Callable[[float, float], float] = random.uniform) -> None:
        self.engine = engine
        self.path = config_path
        self.rand = rand
        self.seen: Fingerprint | None = None
        self.pending: Any = None

    def tick(self) -> None:
        settings = self.engine.reg.reload_settings
        if not settings.watch:
            self.seen = None
            return
        now = config_files(self.path, self.engine.reg.included_directories)
        if self.seen is None:
            self.seen = now
            self.engine.reg.log(f"Watching {len(now)} configuration file(s) for changes")
            return
        if self.pending is not None:
            return
        if now != self.seen:
            delay = self.rand(0.0, max(0.0, settings.max_delay))
            self.pending = self.engine.loop.call_later(delay, self._reload)

    def _reload(self) -> None:
        self.pending = None
        self.engine.reg.log("Configuration file changed, reloading")
        reload_config(self.engine)
        self.seen = config_files(self.path, self.engine.reg.included_directories)
