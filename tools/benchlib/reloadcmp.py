"""Reload against restart, measured the same way: a steady UDP stream over a fixed set of
names (all cached before the change), then either a hot reload (SIGHUP, pydist) or a restart
(SIGTERM and start again: what dnsdist users do); queries lost and the cache hit rate in the
window after the change, the hit rate read at the backend (names it had to answer)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from .failover import EchoBackend, _Output
from .procs import free_port

CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({{address="127.0.0.1:{backend}"}})
pc = newPacketCache(10000, {{maxTTL=3600}})
getPool(""):setCache(pc)
"""
RULE = 'addAction("changed.test.", DropAction())\n'
ANSWER_RR = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x01"   # A 192.0.2.1


class ABackend(EchoBackend):
    """Answers every query with one A record (TTL 3600); counts the queries for the
    stream's names (health checks apart)."""

    def __init__(self) -> None:
        self.names = 0
        super().__init__()

    def reply(self, data: bytes) -> bytes:
        if b"\x06stream" in data:
            self.names += 1
        end = data.index(b"\x00", 12) + 5
        return data[:2] + bytes((data[2] | 0x80, 0x80)) + b"\x00\x01\x00\x01\x00\x00\x00\x00" \
            + data[12:end] + ANSWER_RR


def _query(qid: int, n: int) -> bytes:
    name = b"".join(bytes((len(p),)) + p for p in (f"n{n}".encode(), b"stream", b"test"))
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name \
        + b"\x00\x00\x01\x00\x01"


@dataclass
class Window:
    sent: int = 0
    lost: int = 0
    backend: int = 0

    def hit_rate(self) -> float:
        answered = self.sent - self.lost
        return 0.0 if answered <= 0 else max(0.0, 1 - self.backend / answered)


class Stream:
    """`rate` queries a second over `names` names, round robin; an answer is matched by ID;
    a query unanswered after `timeout` seconds is lost."""

    def __init__(self, port: int, rate: float, names: int, timeout: float = 1.0) -> None:
        self.port, self.rate, self.names, self.timeout = port, rate, names, timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.2)
        self.pending: dict[int, float] = {}
        self.lock = threading.Lock()
        self.sent = self.answered = 0
        self.stop = threading.Event()

    def run(self) -> None:
        threading.Thread(target=self._receive, daemon=True).start()
        i, start = 0, time.monotonic()
        while not self.stop.is_set():
            due = start + i / self.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)       # pacing the load, not synchronisation
            qid = i & 0xFFFF
            with self.lock:
                self.pending[qid] = time.monotonic()
                self.sent += 1
            self.sock.sendto(_query(qid, i % self.names), ("127.0.0.1", self.port))
            i += 1

    def _receive(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            with self.lock:
                if self.pending.pop(int.from_bytes(data[:2], "big"), None) is not None:
                    self.answered += 1

    def lost(self) -> int:
        """Queries unanswered for longer than the timeout."""
        cut = time.monotonic() - self.timeout
        with self.lock:
            return sum(1 for t in self.pending.values() if t < cut)


def _start(argv: Sequence[str], conf: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], _Output]:
    proc = subprocess.Popen(list(argv) + ["--supervised", "--disable-syslog", "-C", conf],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    out = _Output(proc)
    out.wait(r"Marking downstream .* as 'up'")
    return proc, out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(argv: Sequence[str], workdir: str, change: str, rate: float, names: int,
            warm: float, after: float, env: dict[str, str]) -> Window:
    """change: 'reload' (SIGHUP with a rule added) or 'restart' (SIGTERM, start again)."""
    backend = ABackend()
    port = free_port()
    conf = os.path.join(workdir, f"{change}.conf")
    text = CONF.format(port=port, backend=backend.port)
    with open(conf, "w") as f:
        f.write(text)
    proc, out = _start(argv, conf, env)
    stream = Stream(port, rate, names)
    threading.Thread(target=stream.run, daemon=True).start()
    try:
        time.sleep(warm)                   # the warm-up period itself, not a synchronisation
        with stream.lock:
            sent0 = stream.sent
        lost0, backend0 = stream.lost(), backend.names
        with open(conf, "w") as f:
            f.write(text + RULE)
        if change == "reload":
            proc.send_signal(signal.SIGHUP)
            out.wait("Configuration reload")
        else:
            _stop(proc)
            proc, out = _start(argv, conf, env)
        time.sleep(after)                  # the measured window
        with stream.lock:
            sent = stream.sent - sent0
        time.sleep(stream.timeout)         # let the window's last queries come back
        stream.stop.set()
        return Window(sent, stream.lost() - lost0, backend.names - backend0)
    finally:
        stream.stop.set()
        _stop(proc)
