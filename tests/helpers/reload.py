"""Driving a hot reload from a test: rewrite the config, SIGHUP, wait for the log line (a
condition, never a sleep); read counters over the console with a client config that never
changes (the served config may be broken on purpose)."""
from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

from tests.helpers.pydist_proc import DnsdistProcess, run_cli

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONSOLE = 'controlSocket("127.0.0.1:{portc}")\nsetKey("' + KEY + '")\n'
RELOAD_LINE = r"Configuration reload(ed| failed)"


def reload_by_signal(proc: DnsdistProcess, text: str | None = None,
                     timeout: float = 10.0) -> str:
    """Write `text` as the config (if given), SIGHUP, and return the reload's log line."""
    if text is not None:
        proc.conf.write_text(text)
    done = reloads_seen(proc)
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGHUP)
    return proc.wait_for(RELOAD_LINE, timeout, count=done + 1)


def reloads_seen(proc: DnsdistProcess) -> int:
    rx = re.compile(RELOAD_LINE)
    return sum(1 for line in proc.output.splitlines() if rx.search(line))


def console(proc: DnsdistProcess, command: str) -> str:
    """Run a console command through a client config of its own (console address and key)."""
    client = Path(proc.conf).with_suffix(".client.conf")
    client.write_text(CONSOLE.replace("{portc}", str(proc.values["portc"])))
    res = run_cli(proc.impl, ["-C", str(client), "-e", command])
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def dump_stats(proc: DnsdistProcess) -> dict[str, float]:
    out = {}
    for name, value in re.findall(r"(\S+)\s+(-?[\d.]+)", console(proc, "dumpStats()")):
        out[name] = float(value)
    return out


def listener_inodes(pid: int, port: int) -> set[int]:
    """Socket inodes of the process's sockets bound to `port` on 127.0.0.1 (UDP and TCP)."""
    wanted = f"0100007F:{port:04X}"
    inodes: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/tcp"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[1] == wanted and (table.endswith("udp") or cols[3] == "0A"):
                    inodes.add(int(cols[9]))
    return inodes & process_socket_inodes(pid)


def process_socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out.add(int(m.group(1)))
    return out


def port_answers_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False
