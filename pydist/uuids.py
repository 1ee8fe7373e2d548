"""Random ids for servers and rules, as dnsdist makes them (boost's random version-4 UUID).

Made here from os.urandom because the uuid module pulls in platform and costs start-up time
in every config, while only a config that names an `id` needs uuid's parser.

With worker processes (pydist.workers) a console line runs in the supervisor and then in
every worker: the ids the supervisor made are recorded and replayed in each worker, so a
rule or server made at runtime has the same UUID everywhere (rmRule("uuid") works)."""
from __future__ import annotations

import os

_recorded: list[str] | None = None     # ids made since record() (the supervisor's line)
_replayed: list[str] = []              # ids to hand out first (a worker replaying a line)


def random_uuid() -> str:
    """A version-4 UUID in its lowercase text form."""
    if _replayed:
        return _replayed.pop(0)
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40   # version 4
    b[8] = (b[8] & 0x3F) | 0x80   # RFC 4122 variant
    h = b.hex()
    text = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if _recorded is not None:
        _recorded.append(text)
    return text


def record() -> list[str]:
    """Start recording the ids made from now on; returns the list they go into."""
    global _recorded
    _recorded = []
    return _recorded


def stop_recording() -> None:
    global _recorded
    _recorded = None


def replay(ids: list[str]) -> None:
    """The next ids made are these (then random ones again)."""
    _replayed[:] = ids
