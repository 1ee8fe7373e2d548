"""Failover measurement: two loopback backends, steady queries, one backend stopped mid-run.

Reports how many queries were lost and for how long, for any dnsdist-compatible binary, so
pydist and real dnsdist can be measured on the same setup (tools/failover, and the test that
bounds the loss). Loopback only; every process and thread started here is stopped at the end.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .procs import free_port

CONFIG = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setServerPolicy({policy})
newServer({{address="127.0.0.1:{port_a}", name="a"}})
newServer({{address="127.0.0.1:{port_b}", name="b"}})
"""




class EchoBackend:
    """A UDP backend that echoes each query with QR and RA set (health checks pass)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.silent = False
        self.received = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            self.received += 1
            if self.silent or len(data) < 12:
                continue
            try:
                self.sock.sendto(self.reply(data), addr)
            except OSError:
                return

    def reply(self, data: bytes) -> bytes:
        return data[:2] + bytes((data[2] | 0x80, data[3] | 0x80)) + data[4:]

    def stop(self) -> None:
        """Free the port at once: later datagrams get ICMP port unreachable (a dead process)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@dataclass
class FailoverResult:
    """What one run measured; times are seconds relative to the moment the backend stopped."""
    sent: int = 0
    answered: int = 0
    lost: int = 0
    last_loss: float | None = None          # send time of the last unanswered query
    marked_down: float | None = None        # when "Marking downstream a ... 'down'" was printed
    lost_times: list[float] = field(default_factory=list)

    def summary(self) -> str:
        recovered = "none lost" if self.last_loss is None else f"{max(self.last_loss, 0):.2f}s"
        down = "never" if self.marked_down is None else f"{self.marked_down:.2f}s"
        return (f"sent {self.sent}, lost {self.lost}, none lost after {recovered}, "
                f"marked down after {down}")


def _query(qid: int) -> bytes:
    name = b"".join(bytes((len(p),)) + p for p in (f"fo{qid}".encode(), b"failover", b"test"))
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name \
        + b"\x00\x00\x01\x00\x01"


class _Output:
    """The server's stdout, kept with arrival times."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip()))
                self.cond.notify_all()

    def wait(self, pattern: str, count: int = 1, timeout: float = 15.0) -> float:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [t for t, ln in self.lines if rx.search(ln)]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {pattern!r} in output:\n"
                                       + "\n".join(ln for _, ln in self.lines))
                self.cond.wait(min(left, 0.2))

    def first(self, pattern: str) -> float | None:
        rx = re.compile(pattern)
        with self.cond:
            return next((t for t, ln in self.lines if rx.search(ln)), None)


def run_failover(argv: Sequence[str], workdir: str, policy: str = "roundrobin",
                 rate: float = 200.0, before: float = 1.5, after: float = 4.0,
                 timeout: float = 1.0, silent: bool = False,
                 env: Mapping[str, str] | None = None) -> FailoverResult:
    """Serve through `argv` (a dnsdist-compatible command), stop backend a after `before`
    seconds of steady queries at `rate`/s, keep querying for `after` seconds, and count."""
    a, b = EchoBackend(), EchoBackend()
    port = free_port()
    conf = os.path.join(workdir, f"failover-{port}.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, policy=policy, port_a=a.port, port_b=b.port))
    proc = subprocess.Popen([*argv, "--supervised", "--disable-syslog", "-C", conf],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env=dict(env) if env is not None else None)
    try:
        out = _Output(proc)
        out.wait(r"Marking downstream .* as 'up'", count=2)
        return _measure(out, port, a, rate, before, after, timeout, silent)
    finally:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
        a.stop()
        b.stop()


def _measure(out: _Output, port: int, victim: EchoBackend, rate: float, before: float,
             after: float, timeout: float, silent: bool) -> FailoverResult:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.2)
    sent_at: dict[int, float] = {}
    answered: set[int] = set()
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            try:
                data = sock.recv(4096)
            except (TimeoutError, ConnectionRefusedError):
                continue
            except OSError:
                return
            if len(data) >= 12:
                answered.add((data[0] << 8) | data[1])
    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    start = time.monotonic()
    stopped_at = start + before
    stopped = False
    qid, interval = 0, 1.0 / rate
    while time.monotonic() < stopped_at + after:
        now = time.monotonic()
        if not stopped and now >= stopped_at:
            if silent:
                victim.silent = True
            else:
                victim.stop()
            stopped, stopped_at = True, now
        sock.send(_query(qid))
        sent_at[qid] = now
        qid += 1
        time.sleep(max(0.0, start + qid * interval - time.monotonic()))
    time.sleep(timeout)                      # the last answers may still be on their way
    done.set()
    reader.join(1)
    sock.close()
    res = FailoverResult(sent=len(sent_at), answered=len(answered))
    res.lost_times = sorted(t - stopped_at for q, t in sent_at.items() if q not in answered)
    res.lost = len(res.lost_times)
    res.last_loss = res.lost_times[-1] if res.lost_times else None
    down = out.first(r"Marking downstream a \(.*as 'down'")
    res.marked_down = None if down is None else down - stopped_at
    return res
