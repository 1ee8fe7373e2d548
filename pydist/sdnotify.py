"""systemd's readiness notification, as dnsdist sends it under `--supervised` (sd_notify
"READY=1" once the listeners are up), so a `Type=notify` unit knows when DNS is served.
Without $NOTIFY_SOCKET (not started by systemd) it does nothing; a failure is not fatal."""
from __future__ import annotations

import os
import socket


def notify(state: str = "READY=1", environ: dict[str, str] | None = None) -> bool:
    """Send `state` to $NOTIFY_SOCKET ('@name' is the abstract namespace); True when sent."""
    path = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return False
    address = "\0" + path[1:] if path[0] == "@" else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(state.encode())
    except OSError:
        return False
    return True
