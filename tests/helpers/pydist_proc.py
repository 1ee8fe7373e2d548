"""Run pydist (or real dnsdist) as a subprocess on free loopback ports, for integration tests.

Configs are templates: `{name}` placeholders are filled from a mapping; any `{port...}` name not
in the mapping gets a fresh free loopback port. Lua table braces (`{maxTTL=300}`, `{"a"}`) are
left alone because only `{identifier}` is substituted.
"""
from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import dns.exception
import dns.message
import dns.query
import dns.rcode

IMPLS = ("pydist", "dnsdist")
_REPO = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_handed_out: set[int] = set()
_port_lock = threading.Lock()


def command_for(impl: str) -> list[str]:
    """The argv prefix that starts one implementation."""
    if impl == "pydist":
        return [sys.executable, "-m", "pydist"]
    if impl == "dnsdist":
        return ["dnsdist"]
    raise ValueError(impl)


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1 and ::1, never handed out twice in this run."""
    for _ in range(200):
        # below the ephemeral range: no outgoing connection takes it between probe and bind
        port = random.randrange(20000, 32768)
        with _port_lock:
            if port in _handed_out:
                continue
        if _port_is_free(port):
            with _port_lock:
                _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port")


def _port_is_free(port: int) -> bool:
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            try:
                with socket.socket(fam, kind) as s:
                    s.bind((host, port))
            except OSError:
                return False
    return True


def fill_template(text: str, values: Mapping[str, object]) -> tuple[str, dict[str, object]]:
    """Replace `{name}` placeholders; unknown `{port*}` names get free ports. Returns all values."""
    filled: dict[str, object] = dict(values)

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in filled:
            if not name.startswith("port"):
                return m.group(0)
            filled[name] = free_port()
        return str(filled[name])
    return _PLACEHOLDER.sub(sub, text), filled


def run_cli(impl: str, args: Sequence[str], cwd: Path | None = None, stdin: int | None = None,
            timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run one implementation to completion; stdout and stderr captured separately."""
    return subprocess.run(command_for(impl) + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or _REPO, stdin=stdin,
                          env=_env(impl), errors="replace")


def _env(impl: str) -> dict[str, str]:
    env = dict(os.environ)
    if impl == "pydist":
        env["PYTHONPATH"] = str(_REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class DnsdistProcess:
    """One running pydist/dnsdist: config written from a template, stdout collected, killed on stop."""

    def __init__(self, impl: str, template: str, workdir: Path,
                 values: Mapping[str, object] | None = None, extra_args: Sequence[str] = (),
                 check_config: bool = True) -> None:
        self.impl = impl
        self.conf_text, self.values = fill_template(template, values or {})
        self.conf = workdir / f"{impl}-{len(list(workdir.glob('*.conf')))}.conf"
        self.conf.write_text(self.conf_text)
        self.extra_args = list(extra_args)
        self.check_config = check_config
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False

    # --- lifecycle
    def start(self, ready: str | None = "auto", timeout: float = 10.0) -> "DnsdistProcess":
        """--check-config first (must say OK), then serve; wait for `ready` (a regex on stdout).

        "auto": every configured newServer marked up, or the banner when there is none.
        """
        if self.check_config:
            res = run_cli(self.impl, ["--check-config", "-C", str(self.conf)] + self.extra_args)
            assert res.returncode == 0, f"{self.impl} --check-config failed:\n{res.stdout}{res.stderr}"
            assert f"Configuration '{self.conf}' OK!" in res.stdout, res.stdout
        self.proc = subprocess.Popen(
            command_for(self.impl) + ["--supervised", "--disable-syslog", "-C", str(self.conf)]
            + self.extra_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=_REPO, env=_env(self.impl), start_new_session=True)
        threading.Thread(target=self._reader, daemon=True).start()
        if ready == "auto":
            ready = self._auto_ready()
        if ready:
            self.wait_for(ready, timeout)
        return self

    def _auto_ready(self) -> str:
        return r"Marking downstream .* as 'up'" if "newServer" in self.conf_text \
            else r"Console ACL allowing"

    def _reader(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL if it lingers; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(3)
        return self.proc.returncode

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code of a process expected to end by itself (e.g. after shutdown())."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- output
    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10.0, count: int = 1) -> str:
        """Block until `count` stdout lines match `pattern`; fail with the output otherwise."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [ln for ln in self.lines if rx.search(ln)]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(f"{self.impl}: no line matching {pattern!r} in:\n"
                                         + "\n".join(self.lines))
                self._cond.wait(min(left, 0.2))

    # --- addresses
    def addr(self, port_name: str = "port", family: int = 4) -> tuple[str, int]:
        host = "127.0.0.1" if family == 4 else "::1"
        return host, int(self.values[port_name])  # type: ignore[arg-type]


def query(where: tuple[str, int], qname: str, rdtype: str = "A", tcp: bool = False,
          timeout: float = 1.5, qid: int | None = None, **kw: object) -> dns.message.Message | None:
    """One dnspython query; None when nothing came back in time (or TCP closed on us)."""
    q = dns.message.make_query(qname, rdtype, **kw)  # type: ignore[arg-type]
    if qid is not None:
        q.id = qid
    return send_message(where, q, tcp, timeout)


def send_message(where: tuple[str, int], q: dns.message.Message, tcp: bool = False,
                 timeout: float = 1.5) -> dns.message.Message | None:
    host, port = where
    try:
        if tcp:
            return dns.query.tcp(q, host, port=port, timeout=timeout)
        return dns.query.udp(q, host, port=port, timeout=timeout, ignore_unexpected=True)
    except (dns.exception.Timeout, EOFError, ConnectionError):
        return None


def poll_until(fn: Callable[[], object], timeout: float = 5.0, interval: float = 0.05) -> object:
    """Call fn until it returns something truthy; that value, or AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def rcode_name(msg: dns.message.Message) -> str:
    return dns.rcode.to_text(msg.rcode())

