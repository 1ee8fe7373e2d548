"""Processes the benchmark starts: pinned to a core, always killed, measured from /proc.

Every process goes through `ProcessGroup.start`, and `ProcessGroup.close` (run from a
`finally`, also on Ctrl-C and SIGTERM) kills whatever is still alive.
"""

from __future__ import annotations

import os
import shlex
import socket
import struct
import subprocess
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port free for both UDP and TCP right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def pinned(core: int | None, argv: list[str]) -> list[str]:
    """argv run under `taskset -c core` (taskset execs, so the PID stays the server's)."""
    return argv if core is None else ["taskset", "-c", str(core), *argv]


class ProcessGroup:
    """Owns every process the benchmark started and kills them all at the end."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log_path: str, cwd: str | None = None) -> subprocess.Popen[bytes]:
        """Start argv in its own session (so a terminal Ctrl-C reaches only us), output to a log."""
        log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=cwd)
        finally:
            log.close()
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; also reaps it."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)

    def close(self) -> None:
        """Kill everything still running."""
        for proc in list(self._procs):
            self.stop(proc, grace=1.0)


def _descendants(pid: int) -> list[int]:
    """pid and all its live descendants (pydist may run worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime of pid and its descendants, in seconds (from /proc/PID/stat)."""
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / CLK_TCK


def core_busy_seconds(core: int) -> float:
    """Busy time of one core (all but idle and iowait), from /proc/stat: shows other load."""
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # user..steal minus idle, iowait
    return 0.0


def rss_kib(pid: int) -> int:
    """VmRSS of pid and its descendants, in KiB (from /proc/PID/status)."""
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def _probe(port: int, qname: str, timeout: float) -> bool:
    """Send one A query over UDP and report whether an answer with a record came back."""
    labels = b"".join(bytes([len(x)]) + x.encode() for x in qname.strip(".").split("."))
    query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(query, ("127.0.0.1", port))
            data = s.recv(4096)
        except OSError:
            return False
    return len(data) >= 12 and data[:2] == b"\x42\x42" and struct.unpack("!H", data[6:8])[0] > 0


@dataclass
class Ready:
    """Outcome of waiting for a server."""

    ok: bool
    seconds: float


def wait_answering(proc: subprocess.Popen[bytes], port: int, deadline_s: float = 20.0) -> Ready:
    """Wait until the server answers a real query (so its backend is up too), or give up."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if proc.poll() is not None:
            return Ready(False, time.monotonic() - start)
        if _probe(port, "ready.bench.example.", 0.3):
            return Ready(True, time.monotonic() - start)
        time.sleep(0.1)
    return Ready(False, time.monotonic() - start)


def shell_join(argv: list[str]) -> str:
    """argv as a shell line, for the report."""
    return shlex.join(argv)
