"""Starting, probing and stopping one implementation (real dnsdist or pydist) on loopback."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydist.compare.ports import free_ports, is_bound
from pydist.compare.wrapper import WrapperPlan, render_wrapper

LISTEN_SLOTS = 16
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


def default_pydist_command() -> list[str]:
    """`pydist` from PATH, else `python3 -m pydist` from this checkout."""
    found = shutil.which("pydist")
    return [found] if found else [sys.executable, "-m", "pydist"]


def split_command(cmd: str | None, fallback: list[str]) -> list[str]:
    """A command given as one string ("python3 -m pydist") as an argv list."""
    return shlex.split(cmd) if cmd else list(fallback)


class SideFailed(Exception):
    """A side could not be started (or died); carries its log."""

    def __init__(self, side: str, reason: str, log: str) -> None:
        super().__init__(f"{side}: {reason}")
        self.side = side
        self.reason = reason
        self.log = log


@dataclass
class RunResult:
    """Exit status and combined output of a short command (check-config, console)."""

    returncode: int | None
    output: str
    timed_out: bool = False


@dataclass
class Side:
    """One implementation under comparison, with its own ports and wrapper file."""

    name: str
    command: list[str]
    config: Path
    workdir: Path
    responder_ports: list[int]
    upstream_map: dict[str, str]
    map_loopback: bool
    metrics: bool
    extra_lua: str = ""
    console_key: str = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
    api_key: str = "pydist-compare-api-key"
    env: dict[str, str] = field(default_factory=dict)
    doh_ports: list[int] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    lines: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = free_ports(LISTEN_SLOTS + 2)
        self.listen_ports = ports[:LISTEN_SLOTS]
        self.console_port, self.web_port = ports[LISTEN_SLOTS:]
        self.wrapper = self.workdir / f"{self.name}-wrapper.conf"
        self.notes_path = self.workdir / f"{self.name}-notes.tsv"
        plan = WrapperPlan(
            config_path=str(self.config), listen_ports=self.listen_ports,
            responder_ports=self.responder_ports, console_port=self.console_port,
            web_port=self.web_port, web_api_key=self.api_key, notes_path=str(self.notes_path),
            upstream_map=self.upstream_map, map_loopback_upstreams=self.map_loopback,
            enable_metrics=self.metrics, extra_lua=self.extra_lua,
            tls_cert=str(self.workdir / "compare-dot.pem"), tls_key=str(self.workdir / "compare-dot.key"),
            tls_tickets=str(self.workdir / "compare-dot.tickets"), doh_ports=self.doh_ports)
        self.wrapper.write_text(render_wrapper(plan))

    # -- helpers -----------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = _REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(self.env)
        for key, value in list(env.items()):
            if value == "\0unset":
                del env[key]
        return env

    def normalize(self, text: str) -> str:
        """Side-specific paths and ports replaced by names, so both sides' texts compare."""
        text = text.replace(str(self.wrapper), "<config>").replace(str(self.config), "<config>")
        text = text.replace(str(self.workdir), "<workdir>")
        for i, port in enumerate(self.listen_ports):
            text = re.sub(rf"(?<!\d){port}(?!\d)", f"<listen{i}>", text)
        text = re.sub(rf"(?<!\d){self.console_port}(?!\d)", "<console>", text)
        text = re.sub(rf"(?<!\d){self.web_port}(?!\d)", "<web>", text)
        return text

    def run(self, args: list[str], timeout: float) -> RunResult:
        """Run the implementation once (check-config, console client) and collect its output."""
        try:
            proc = subprocess.Popen([*self.command, *args], cwd=self.config.parent, env=self._env(),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            return RunResult(None, f"cannot run {self.command[0]}: {exc}")
        try:
            out, _ = proc.communicate(timeout=timeout)
            return RunResult(proc.returncode, out.decode("utf-8", "replace"))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            return RunResult(None, out.decode("utf-8", "replace"), timed_out=True)

    def check_config(self, timeout: float = 30.0) -> RunResult:
        return self.run(["--check-config", "-C", str(self.wrapper)], timeout)

    def console(self, command: str, timeout: float = 10.0) -> RunResult:
        return self.run(["-C", str(self.wrapper), "-k", self.console_key, "-e", command], timeout)

    # -- the long-running server ---------------------------------------------------------
    def start(self, timeout: float = 20.0) -> None:
        """Start in supervised mode and wait until the listener and console are bound."""
        try:
            self.proc = subprocess.Popen(
                [*self.command, "--supervised", "--disable-syslog", "-C", str(self.wrapper),
                 "-k", self.console_key],
                cwd=self.config.parent, env=self._env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise SideFailed(self.name, f"cannot run {self.command[0]}: {exc}", "") from exc
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._wait_output()
                raise SideFailed(self.name, f"exited with status {self.proc.returncode} during startup", self.log())
            port = self.target_port()
            if port and is_bound(port, socket.SOCK_DGRAM) and is_bound(port, socket.SOCK_STREAM) \
                    and is_bound(self.console_port, socket.SOCK_STREAM) \
                    and (not self.metrics or is_bound(self.web_port, socket.SOCK_STREAM)):
                return
            time.sleep(0.05)
        self.stop()
        raise SideFailed(self.name, f"not listening after {timeout:.0f}s (hung?)", self.log())

    def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    def _wait_output(self) -> None:
        self._reader.join(timeout=2)

    def notes(self) -> list[tuple[str, str]]:
        """(kind, text) lines the wrapper wrote while the config ran."""
        try:
            rows = self.notes_path.read_text().splitlines()
        except OSError:
            return []
        return [tuple(row.split("\t", 1)) for row in rows if "\t" in row]  # type: ignore[misc]

    def target_port(self) -> int | None:
        """The first plain listener's port (where traffic goes), once the wrapper said so."""
        target = None
        for kind, text in self.notes():
            if kind == "listener":
                parts = text.split("\t")
                port = int(parts[-1].rsplit(":", 1)[1])
                if parts[0] == "setLocal" or (parts[0] == "addLocal" and target is None):
                    target = port
        return target

    def dot_port(self) -> int | None:
        """The first DoT listener's port, where `+tls` queries go."""
        for kind, text in self.notes():
            parts = text.split("\t")
            if kind == "listener" and parts[0] == "addTLSLocal":
                return int(parts[-1].rsplit(":", 1)[1])
        return None

    def doh_target(self) -> tuple[str, str, int] | None:
        """(scheme, first URL path, port) of the first DoH listener, where `+https` goes."""
        for kind, text in self.notes():
            if kind == "doh":
                scheme, url, addr = text.split("\t")
                return scheme, url, int(addr.rsplit(":", 1)[1])
        return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return "\n".join(line for _, line in list(self.lines))

    def stop(self) -> None:
        if self.proc is None:
            return
        _kill_group(self.proc)
        self.proc = None


def exit_on_termination() -> None:
    """SIGTERM/SIGHUP end the comparer through its `finally` blocks, so the two servers it
    started (in their own sessions) are stopped too instead of being left running."""
    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    if threading.current_thread() is not threading.main_thread():
        return                      # only the main thread may set handlers (embedded use)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group we created, SIGKILL it after a second."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=1.5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
