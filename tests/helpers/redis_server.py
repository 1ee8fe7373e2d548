"""A throwaway redis-server for the shared cache level's tests: a free loopback port, no
persistence, stopped by its PID (and restartable on the same port)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

from tests.helpers.pydist_proc import free_port


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is required (Debian package redis-server, see .ci/run)"
        self.exe = exe
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.command(b"PING") != b"+PONG\r\n":
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def command(self, *args: bytes) -> bytes | None:
        """One RESP command; the raw reply, or None when Redis is not there."""
        wire = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(wire)
                return s.recv(65536)
        except OSError:
            return None

    def keys(self) -> int:
        reply = self.command(b"DBSIZE") or b":0\r\n"
        return int(reply[1:].strip())
