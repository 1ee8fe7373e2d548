"""Start-up figures: seconds from exec to the first answer, and for `--check-config`.

Tooling that starts dnsdist and sends a query a moment later must get an answer from pydist
too, so the start is measured the way such tooling meets it: exec, then a UDP query every few
milliseconds until one is answered through the backend. Both binaries run the same config,
interleaved, repeated; medians are reported (the machine may be busy with other work), with
the CPU seconds the process used until then, which other load barely moves.
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import configs, procs
from .stats import median

_QUERY = (struct.pack("!HHHHHH", 0x5353, 0x0100, 1, 0, 0, 0) + b"\x05start\x05bench\x07example\x00"
          + struct.pack("!HH", 1, 1))


@dataclass
class StartupResult:
    """One side's start-to-answer and check-config times, in seconds, per repetition."""

    answer_s: list[float] = field(default_factory=list)
    check_s: list[float] = field(default_factory=list)
    answer_cpu_s: list[float] = field(default_factory=list)
    check_cpu_s: list[float] = field(default_factory=list)
    error: str | None = None

    def medians(self) -> dict[str, float | None]:
        return {k: median(getattr(self, k))
                for k in ("answer_s", "check_s", "answer_cpu_s", "check_cpu_s")}


def _answered(sock: socket.socket, port: int) -> bool:
    try:
        sock.sendto(_QUERY, ("127.0.0.1", port))
        data = sock.recv(4096)
    except OSError:
        return False
    return len(data) >= 12 and data[:2] == _QUERY[:2] and struct.unpack("!H", data[6:8])[0] > 0


def time_to_answer(argv: list[str], port: int, log_path: str, group: procs.ProcessGroup,
                   cwd: str, deadline_s: float = 20.0) -> tuple[float, float]:
    """Seconds from starting argv until it answers a query on port, and the CPU seconds it
    used by then.

    :raises RuntimeError: when it exits or does not answer within deadline_s.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.005)
        start = time.monotonic()
        proc = group.start(argv, log_path, cwd=cwd)
        try:
            while time.monotonic() - start < deadline_s:
                if _answered(sock, port):
                    return time.monotonic() - start, procs.cpu_seconds(proc.pid)
                if proc.poll() is not None:
                    raise RuntimeError(f"exited with {proc.returncode} before answering")
            raise RuntimeError(f"no answer within {deadline_s:.0f}s")
        finally:
            group.stop(proc)


def time_check_config(argv: list[str], cwd: str) -> tuple[float, float]:
    """Seconds `argv --check-config` takes, and its CPU seconds.

    :raises RuntimeError: when it does not say the configuration is OK.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(argv, capture_output=True, timeout=60, cwd=cwd, check=False)
    took = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if out.returncode != 0:
        raise RuntimeError(f"--check-config exited {out.returncode}: {out.stdout[-300:]!r}")
    return took, cpu


def measure(sides: list[tuple[str, list[str]]], backend_port: int, repeat: int, workdir: str,
            cwd: str, group: procs.ProcessGroup, core: int | None,
            log: Callable[[str], None]) -> dict[str, StartupResult]:
    """Both figures for every side, sides interleaved (alternating who goes first)."""
    results = {label: StartupResult() for label, _ in sides}
    for rep in range(repeat):
        for label, command in (sides if rep % 2 == 0 else list(reversed(sides))):
            res = results[label]
            if res.error:
                continue
            port = procs.free_port()
            conf = os.path.join(workdir, f"startup-{label}-{rep}.conf")
            with open(conf, "w", encoding="utf-8") as f:
                f.write(configs.under_test(port, backend_port))
            try:
                wall, cpu = time_to_answer(
                    procs.pinned(core, [*command, "--supervised", "--disable-syslog", "-C", conf]),
                    port, os.path.join(workdir, f"startup-{label}-{rep}.log"), group, cwd)
                res.answer_s.append(wall)
                res.answer_cpu_s.append(cpu)
                wall, cpu = time_check_config(
                    procs.pinned(core, [*command, "--check-config", "-C", conf]), cwd)
                res.check_s.append(wall)
                res.check_cpu_s.append(cpu)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                res.error = f"{label}: {e}"
                continue
            log(f"  rep {rep + 1} {label}: first answer {res.answer_s[-1]:.3f}s, "
                f"--check-config {res.check_s[-1]:.3f}s")
    return results


def table(results: dict[str, StartupResult]) -> str:
    """Medians side by side, and pydist's lead over dnsdist (the goal: under 0.3 s)."""
    py, dd = results["pydist"].medians(), results["dnsdist"].medians()
    lines = ["start-up (median s)  | pydist | dnsdist | difference",
             "---------------------+--------+---------+-----------"]
    for key, name in (("answer_s", "exec to first answer"), ("check_s", "--check-config"),
                      ("answer_cpu_s", "  CPU s until answer"), ("check_cpu_s", "  CPU s of check")):
        p, d = py[key], dd[key]
        diff = "-" if p is None or d is None else f"{p - d:+.3f}"
        lines.append(f"{name:<20} | {_s(p):>6} | {_s(d):>7} | {diff:>10}")
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
