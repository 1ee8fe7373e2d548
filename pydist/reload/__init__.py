"""Hot reload (issue 19): the config file evaluated again into a fresh registry, checked,
compared with the running one, and swapped in between two queries with the state that makes a
running dnsdist valuable (packet caches, server health, dynamic blocks, counters, listening
sockets) carried over by identity. See docs/reload.md.

`reload_config(engine)` is the one entry point: SIGHUP, `pydist.reload()`, the web API, the
file watch and (later) a worker process on a control message all call it. The modules load
only when used (the registry imports this package's settings)."""
from __future__ import annotations

from typing import Any


def reload_config(engine: Any) -> Any:
    """-> pydist.reload.model.ReloadResult (see pydist/reload/run.py)."""
    from pydist.reload.run import reload_config as run
    return run(engine)
