"""Run dnsdist or pydist with its own /dev/log: a private mount namespace (unshare -m) where
/dev is a folder holding the real null/zero/random/urandom/tty devices and a datagram socket
this helper reads. The host's /dev is never touched. Needs root (CAP_SYS_ADMIN)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Sequence

from tests.helpers.pydist_proc import _env, command_for, poll_until

# $1: the folder standing in for /dev; the rest: the command
_SCRIPT = """set -e
D=$1; shift
for d in null zero random urandom tty full; do touch "$D/$d"; mount --bind "/dev/$d" "$D/$d"; done
mkdir -p "$D/pts" "$D/shm"; mount --bind /dev/pts "$D/pts"; mount --bind /dev/shm "$D/shm"
mount --bind "$D" /dev
exec "$@"
"""
REPO = Path(__file__).resolve().parents[2]


class SyslogCapture:
    """A fake syslog daemon on DEVDIR/log; `messages` are the datagrams received, decoded."""

    def __init__(self, devdir: Path) -> None:
        devdir.mkdir(parents=True, exist_ok=True)
        self.devdir = devdir
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(devdir / "log"))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                self.messages.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


class NamespacedProcess:
    """`impl --supervised [args] -C conf` with DEVDIR as its /dev."""

    def __init__(self, impl: str, conf: Path, devdir: Path, args: Sequence[str] = ()) -> None:
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", _SCRIPT, "sh",
                str(devdir), *command_for(impl), "--supervised", *args, "-C", str(conf)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=REPO, env=_env(impl),
                                     start_new_session=True)
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.output.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_output(self, text: str, timeout: float = 10.0) -> None:
        assert poll_until(lambda: any(text in line for line in self.output), timeout), \
            (text, self.output)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
