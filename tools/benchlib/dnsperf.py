"""Build dnsperf command lines and parse their output (dnsperf 2.10 as shipped by Debian 12).

dnsperf prints no percentiles, so latency runs use `-v`, which prints one line per answered
query ("> NOERROR name A 0.000256"), and the percentiles are computed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SENT = re.compile(r"^\s*Queries sent:\s+(\d+)", re.M)
_COMPLETED = re.compile(r"^\s*Queries completed:\s+(\d+)", re.M)
_LOST = re.compile(r"^\s*Queries lost:\s+(\d+)", re.M)
_RUNTIME = re.compile(r"^\s*Run time \(s\):\s+([\d.]+)", re.M)
_QPS = re.compile(r"^\s*Queries per second:\s+([\d.]+)", re.M)
_AVG_LAT = re.compile(r"^\s*Average Latency \(s\):\s+([\d.]+)", re.M)
_RCODES = re.compile(r"^\s*Response codes:\s+(.*)$", re.M)
_RCODE_ITEM = re.compile(r"([A-Z]+)\s+(\d+)\s+\(")
# "> NOERROR name A 0.000256": the status word, then anything, then the latency in seconds.
_VERBOSE = re.compile(r"^> (\S+) .* (\d+\.\d+)$")


@dataclass
class DnsperfResult:
    """What one dnsperf run reported."""

    sent: int = 0
    completed: int = 0
    lost: int = 0
    run_time: float = 0.0
    qps: float = 0.0
    avg_latency: float | None = None
    rcodes: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


class DnsperfOutputError(ValueError):
    """dnsperf's output lacked its statistics block (it failed or was killed)."""


def parse_output(text: str) -> DnsperfResult:
    """Parse dnsperf's statistics block and any `-v` per-query lines.

    :raises DnsperfOutputError: when the statistics block is missing.
    """
    completed = _COMPLETED.search(text)
    qps = _QPS.search(text)
    if completed is None or qps is None:
        raise DnsperfOutputError("no statistics in dnsperf output: " + text[-300:].strip())
    res = DnsperfResult(completed=int(completed.group(1)), qps=float(qps.group(1)))
    if m := _SENT.search(text):
        res.sent = int(m.group(1))
    if m := _LOST.search(text):
        res.lost = int(m.group(1))
    if m := _RUNTIME.search(text):
        res.run_time = float(m.group(1))
    if m := _AVG_LAT.search(text):
        res.avg_latency = float(m.group(1))
    if m := _RCODES.search(text):
        res.rcodes = {k: int(v) for k, v in _RCODE_ITEM.findall(m.group(1))}
    res.latencies = parse_latencies(text)
    return res


def parse_latencies(text: str) -> list[float]:
    """Latencies in seconds from dnsperf `-v` lines, sorted; lost queries have none."""
    out = [float(m.group(2)) for m in map(_VERBOSE.match, text.splitlines()) if m]
    out.sort()
    return out


def command(
    port: int,
    datafile: str,
    *,
    seconds: float,
    max_passes: int,
    tcp: bool = False,
    dot: bool = False,
    rate: int | None = None,
    verbose: bool = False,
    clients: int = 4,
    outstanding: int = 100,
) -> list[str]:
    """A bounded dnsperf command line: it stops after `seconds` or `max_passes` over the file."""
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", datafile]
    cmd += ["-l", f"{seconds:g}", "-n", str(max_passes), "-c", str(clients)]
    cmd += ["-q", str(outstanding), "-t", "2"]
    if tcp or dot:
        cmd += ["-m", "dot" if dot else "tcp"]
    if rate is not None:
        cmd += ["-Q", str(rate)]
    if verbose:
        cmd.append("-v")
    return cmd
