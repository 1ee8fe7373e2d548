"""Runs the scenarios: servers pinned to one core, dnsperf and the backend to the other,
pydist and dnsdist runs interleaved (the order alternates each repetition), medians kept."""

from __future__ import annotations

import math
import os
import pathlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from . import configs, dnsperf, procs, queries
from .scenarios import Scenario
from .stats import median, percentile


@dataclass
class Settings:
    """Everything a run depends on (reported in the JSON output)."""

    duration: float = 5.0
    repeat: int = 3
    warmup: float = 1.0
    server_core: int = 1
    load_core: int = 0
    rules: int = 0
    lua_action: bool = False
    clients: int = 4
    outstanding: int = 100
    hit_qps_cap: int = 400_000  # bounds dnsperf's query count on hit runs
    miss_names_per_second: int = 100_000  # unique names written per second of a miss run
    fill_timeout: float = 120.0
    listeners: int = 1  # reusePort listeners of the config under test (tools/bench --workers)


@dataclass
class Side:
    """One server command being compared ("pydist" or "dnsdist")."""

    label: str
    command: list[str]
    extra_config: str = ""  # appended to the config under test (tools/bench --cache)


@dataclass
class RunResult:
    """One measured dnsperf run against one server."""

    qps: float
    completed: int
    lost: int
    run_time: float
    cpu_s: float
    us_per_query: float | None
    rss_kib: int
    rss_idle_kib: int | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    other_load: float | None = None  # share of the server core busy with anything else
    rcodes: dict[str, int] = field(default_factory=dict)


@dataclass
class SideResult:
    """All runs of one side in one scenario, and why it failed if it did."""

    runs: list[RunResult] = field(default_factory=list)
    error: str | None = None

    def medians(self) -> dict[str, float | None]:
        """Median of every numeric figure over the repetitions."""
        keys = ("qps", "us_per_query", "rss_kib", "rss_idle_kib", "p50_us", "p99_us", "lost",
                "other_load")
        return {k: median([getattr(r, k) for r in self.runs if getattr(r, k) is not None])
                for k in keys}

    def to_json(self) -> dict[str, object]:
        """Plain dict for --json."""
        return {"error": self.error, "median": self.medians(), "runs": [asdict(r) for r in self.runs]}


class ServerFailed(RuntimeError):
    """A server under test did not start or stopped answering; carries its log's tail."""


class Runner:
    """Owns the backend and the servers under test for the whole benchmark."""

    def __init__(self, settings: Settings, sides: list[Side], dnsdist: str, workdir: str,
                 repo_root: str, group: procs.ProcessGroup, log: Callable[[str], None]) -> None:
        self.s = settings
        self.sides = sides
        self.dnsdist = dnsdist
        self.workdir = workdir
        self.repo_root = repo_root
        self.group = group
        self.log = log
        self.backend_port = 0
        self._n = 0
        self.hits_files: dict[int, str] = {}

    # --- processes -------------------------------------------------------------------------

    def start_backend(self) -> None:
        """The fast responder, on the load generator's core."""
        self.backend_port = procs.free_port()
        conf = self._write("backend.conf", configs.responder(self.backend_port))
        argv = procs.pinned(self.s.load_core,
                            [self.dnsdist, "--supervised", "--disable-syslog", "-C", conf])
        proc = self.group.start(argv, os.path.join(self.workdir, "backend.log"))
        if not procs.wait_answering(proc, self.backend_port).ok:
            raise ServerFailed("backend responder did not answer:\n" + self._tail("backend.log"))

    def _start_server(self, side: Side, sc: Scenario) -> tuple[subprocess.Popen[bytes], int]:
        """Start one server under test on a fresh port and wait until it answers through the backend.

        The scenario's rules come on top of --rules/--lua-action; with sc.dot it also listens
        for DoT on another port, which is the one returned."""
        port = procs.free_port()
        self._n += 1
        name = f"{side.label}-{sc.name}-{self._n}"
        dot_conf = (procs.free_port(), *self._certs()) if sc.dot else None
        conf = self._write(f"{name}.conf", configs.under_test(
            port, self.backend_port, rules=self.s.rules + sc.rules,
            lua_action=self.s.lua_action or sc.lua_action, dot=dot_conf,
            cache_size=sc.cache_size, listeners=self.s.listeners) + side.extra_config)
        argv = procs.pinned(self.s.server_core,
                            [*side.command, "--supervised", "--disable-syslog", "-C", conf])
        log_name = f"{name}.log"
        # From the repository root, so `python3 -m pydist` imports the checkout.
        proc = self.group.start(argv, os.path.join(self.workdir, log_name), cwd=self.repo_root)
        ready = procs.wait_answering(proc, port)
        if not ready.ok:
            self.group.stop(proc)
            raise ServerFailed(f"{side.label} did not answer within {ready.seconds:.1f}s "
                               f"(exit {proc.returncode}):\n" + self._tail(log_name))
        return proc, dot_conf[0] if dot_conf else port

    def _certs(self) -> tuple[str, str]:
        """A test certificate and key for DoT listeners, made once per run."""
        try:
            from tools.tls_certs import write_set
        except ImportError:                    # run as tools/bench: tools/ is on sys.path
            from tls_certs import write_set    # type: ignore[no-redef]
        d = os.path.join(self.workdir, "certs")
        if not os.path.exists(os.path.join(d, "server.key")):
            write_set(pathlib.Path(d))
        return os.path.join(d, "server.pem"), os.path.join(d, "server.key")

    # --- scenarios -------------------------------------------------------------------------

    def run(self, sc: Scenario) -> dict[str, SideResult]:
        """All repetitions of one scenario on every side."""
        results = {side.label: SideResult() for side in self.sides}
        if sc.fresh_per_rep:
            self._run_fresh(sc, results)
        else:
            self._run_shared(sc, results)
        return results

    def _run_shared(self, sc: Scenario, results: dict[str, SideResult]) -> None:
        """One server per side for the scenario; warm up, then interleaved repetitions."""
        running: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            for side in self.sides:
                try:
                    running[side.label] = self._start_server(side, sc)
                except ServerFailed as e:
                    results[side.label].error = str(e)
            for label, (_, port) in running.items():
                self.log(f"  warm-up {label}")
                try:
                    if sc.hot_names > queries.HIT_NAMES:   # every hot name cached first
                        self._dnsperf(sc, port, self.s.fill_timeout, f"fill-{label}", passes=1)
                    self._dnsperf(sc, port, self.s.warmup, f"warm-{label}")
                except ServerFailed as e:
                    results[label].error = f"warm-up failed: {e}"
            for rep in range(self.s.repeat):
                for side in self._order(rep):
                    if side.label not in running or results[side.label].error:
                        continue
                    proc, port = running[side.label]
                    try:
                        r = self._measure(sc, proc, port, f"{side.label}-r{rep}")
                    except ServerFailed as e:
                        results[side.label].error = str(e)
                        continue
                    results[side.label].runs.append(r)
                    self.log(f"  rep {rep + 1} {side.label}: {_brief(r)}")
        finally:
            for proc, _ in running.values():
                self.group.stop(proc)

    def _run_fresh(self, sc: Scenario, results: dict[str, SideResult]) -> None:
        """A new server (empty cache) for every measured run."""
        for rep in range(self.s.repeat):
            for side in self._order(rep):
                if results[side.label].error:
                    continue
                try:
                    proc, port = self._start_server(side, sc)
                except ServerFailed as e:
                    results[side.label].error = str(e)
                    continue
                try:
                    time.sleep(0.5)  # let start-up allocations settle before the idle RSS
                    idle = procs.rss_kib(proc.pid)
                    r = self._measure(sc, proc, port, f"{side.label}-r{rep}")
                    r.rss_idle_kib = idle
                    results[side.label].runs.append(r)
                    self.log(f"  rep {rep + 1} {side.label}: {_brief(r)}")
                except ServerFailed as e:
                    results[side.label].error = str(e)
                finally:
                    self.group.stop(proc)

    def _order(self, rep: int) -> list[Side]:
        """Alternate which side goes first, so neither always runs on a warmer machine."""
        return self.sides if rep % 2 == 0 else list(reversed(self.sides))

    def _measure(self, sc: Scenario, proc: subprocess.Popen[bytes], port: int, tag: str) -> RunResult:
        """One dnsperf run with the server's CPU time and RSS read around it."""
        cpu0, busy0, t0 = procs.cpu_seconds(proc.pid), procs.core_busy_seconds(self.s.server_core), time.monotonic()
        res = self._dnsperf(sc, port, self.s.duration, tag)
        cpu = procs.cpu_seconds(proc.pid) - cpu0
        busy, wall = procs.core_busy_seconds(self.s.server_core) - busy0, time.monotonic() - t0
        if proc.poll() is not None:
            raise ServerFailed(f"server exited during the run (exit {proc.returncode})")
        rss = procs.rss_kib(proc.pid)
        p50 = percentile(res.latencies, 50)
        p99 = percentile(res.latencies, 99)
        return RunResult(
            qps=res.qps, completed=res.completed, lost=res.lost, run_time=res.run_time,
            cpu_s=cpu, us_per_query=cpu * 1e6 / res.completed if res.completed else None,
            rss_kib=rss, p50_us=None if p50 is None else p50 * 1e6,
            p99_us=None if p99 is None else p99 * 1e6,
            other_load=max(0.0, busy - cpu) / wall if wall > 0 else None, rcodes=res.rcodes)

    def _dnsperf(self, sc: Scenario, port: int, seconds: float, tag: str,
                 passes: int = 0) -> dnsperf.DnsperfResult:
        """Run dnsperf pinned to the load core, bounded by time and query count (a hit run:
        by `passes` over the hot names when given)."""
        path, limit = self._hits_file(sc.hot_names), seconds
        if sc.queries == "hit":
            rate = sc.rate or self.s.hit_qps_cap
            passes = passes or max(1, math.ceil(rate * seconds / sc.hot_names))
        elif sc.queries == "unique":
            count = max(1000, int(self.s.miss_names_per_second * seconds))
            path = queries.write_unique(os.path.join(self.workdir, f"{tag}.txt"), count, f"{sc.name}-{tag}")
            passes = 1
        else:  # fill: exactly fill_names new names, however long that takes (bounded)
            path = queries.write_unique(os.path.join(self.workdir, f"{tag}.txt"), sc.fill_names,
                                        f"{sc.name}-{tag}")
            passes, limit = 1, self.s.fill_timeout
        cmd = dnsperf.command(port, path, seconds=limit, max_passes=passes, tcp=sc.tcp, dot=sc.dot, rate=sc.rate,
                              verbose=sc.latency and not tag.startswith("warm"),
                              clients=self.s.clients, outstanding=self.s.outstanding)
        try:
            out = subprocess.run(procs.pinned(self.s.load_core, cmd), capture_output=True,
                                 timeout=limit + 30, check=False)
        except subprocess.TimeoutExpired as e:
            raise ServerFailed(f"dnsperf did not finish: {procs.shell_join(cmd)}") from e
        finally:
            if sc.queries != "hit":
                queries.remove(path)
        text = out.stdout.decode("utf-8", "replace") + out.stderr.decode("utf-8", "replace")
        try:
            return dnsperf.parse_output(text)
        except dnsperf.DnsperfOutputError as e:
            raise ServerFailed(str(e)) from e

    # --- files -----------------------------------------------------------------------------

    def _hits_file(self, names: int) -> str:
        """The query file of `names` hot names, written once per run."""
        if names not in self.hits_files:
            self.hits_files[names] = queries.write_hits(
                os.path.join(self.workdir, f"hits-{names}.txt"), names)
        return self.hits_files[names]

    def _write(self, name: str, text: str) -> str:
        path = os.path.join(self.workdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def _tail(self, log_name: str, lines: int = 15) -> str:
        try:
            with open(os.path.join(self.workdir, log_name), encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"


def _brief(r: RunResult) -> str:
    us = "-" if r.us_per_query is None else f"{r.us_per_query:.2f}"
    lat = "" if r.p50_us is None else f", p50 {r.p50_us:.0f}us p99 {r.p99_us:.0f}us"
    other = "" if r.other_load is None else f", other load on server core {r.other_load:.0%}"
    return f"{r.qps:,.0f} qps, {us} us/q, RSS {r.rss_kib / 1024:.1f} MiB, lost {r.lost}{lat}{other}"
