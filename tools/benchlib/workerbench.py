"""`tools/bench --workers 1,2,4`: pydist's worker processes (issue 18 item 2) against dnsdist
with the same number of `reusePort` listeners (the same config file: dnsdist gives each
listener a thread, pydist a worker process). Nothing is pinned: the servers, dnsperf and the
backend share the machine's cores, as a deployment would.

* udp-hit / udp-miss for each N: QPS, CPU µs per query and RSS, summed over the processes;
  each run's log line adds how the CPU was split between the server's processes (pydist:
  supervisor and workers) or threads (dnsdist), and the CPU of the load generator per query:
  on a machine where dnsperf shares the servers' cores, a query costs the server's CPU plus
  dnsperf's, so the QPS follows their sum;
* zipf-mix for each N: pydist alone, a Zipf-like mix at a fixed rate: hit rate (1 - backend
  answers / queries) and the summed RSS and PSS (PSS shares the pages the workers inherited
  from the supervisor between them; RSS counts them once per process).
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import urllib.request
from collections.abc import Callable
from typing import Any

from . import configs, dnsperf, procs
from .cachebench import MIX_RATE, HitRate, zipf_file
from .report import row, table
from .runner import Runner, RunResult, ServerFailed, Settings, Side
from .scenarios import SCENARIOS

API_KEY = "bench"
# dnsperf clients (source ports) of every run, whatever --clients says: the kernel spreads
# the clients over the reusePort sockets by a hash of their address and port, and with a few
# (dnsperf's default 4) over 2 listeners one gets them all one run in 8 and three of them
# one run in 2, on either server's side: the ratio was partly luck. With 8 per listener of
# the largest N the spread is even enough; the same figure for both servers and every N.
CLIENTS_PER_LISTENER = 8


def clients_for(counts: list[int], clients: int) -> int:
    return max(clients, CLIENTS_PER_LISTENER * max(counts))


def task_cpu(pid: int) -> dict[tuple[int, int], float]:
    """CPU seconds of every thread of pid and its descendants, by (pid, tid)."""
    out = {}
    for p in procs._descendants(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            out[(p, int(t))] = (int(fields[11]) + int(fields[12])) / procs.CLK_TCK
    return out


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (dnsperf runs)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class SplitRunner(Runner):
    """A Runner that also logs, for each measured run, how the server's CPU was split over
    its processes or threads (the top process first for pydist: the supervisor) and the load
    generator's CPU per query."""

    def _measure(self, sc: Any, proc: subprocess.Popen[bytes], port: int,
                 tag: str) -> RunResult:
        before, gen0 = task_cpu(proc.pid), children_cpu()
        r = super()._measure(sc, proc, port, tag)
        after, gen = task_cpu(proc.pid), children_cpu() - gen0
        used = {k: v - before.get(k, 0.0) for k, v in after.items()}
        total = sum(used.values()) or 1.0
        top = proc.pid, proc.pid
        shares = sorted((v / total for k, v in used.items() if k != top), reverse=True)
        busy = " ".join(f"{x:.0%}" for x in shares if x >= 0.01)
        per_q = gen * 1e6 / r.completed if r.completed else 0.0
        self.log(f"    {tag}: CPU split: main process/thread (pydist: the supervisor) "
                 f"{used.get(top, 0.0) / total:.2%}, the others {busy or '-'}; "
                 f"dnsperf {per_q:.2f} us/q")
        return r


def pss_kib(pid: int) -> int:
    """Proportional set size of pid and its descendants (shared pages split between them)."""
    total = 0
    for p in procs._descendants(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def qps_rows(settings: Settings, sides: list[Side], counts: list[int], dnsdist: str,
             workdir: str, repo_root: str, group: procs.ProcessGroup,
             log: Callable[[str], None]) -> list[list[str]]:
    rows = []
    backend_port = 0
    for n in counts:
        s = dataclasses.replace(settings, listeners=n, server_core=None, load_core=None,
                                clients=clients_for(counts, settings.clients))
        runner = SplitRunner(s, sides, dnsdist, workdir, repo_root, group, log)
        if not backend_port:                    # one backend for every N
            runner.start_backend()
            backend_port = runner.backend_port
        runner.backend_port = backend_port
        for name in ("udp-hit", "udp-miss"):
            log(f"[{name} x{n}] {SCENARIOS[name].description}, {n} reusePort listener(s)")
            r = runner.run(SCENARIOS[name])
            rows.append(row(f"{name} x{n}", r["pydist"], r["dnsdist"]))
            for label, side in r.items():
                if side.error:
                    log(f"# {name} x{n} {label} FAILED: {side.error}")
    return rows


def zipf_mix(settings: Settings, pydist: list[str], counts: list[int], dnsdist: str,
             workdir: str, repo_root: str, group: procs.ProcessGroup,
             log: Callable[[str], None], seconds: float) -> list[str]:
    s = dataclasses.replace(settings, server_core=None, load_core=None,
                            clients=clients_for(counts, settings.clients))
    runner = Runner(s, [], dnsdist, workdir, repo_root, group, log)
    runner.start_backend()
    path = zipf_file(os.path.join(workdir, "zipf-workers.txt"), int(MIX_RATE * seconds), 7)
    out = []
    for n in counts:
        log(f"[zipf-mix x{n}] Zipf mix at {MIX_RATE} qps for {seconds:g} s, {n} listener(s)")
        port, web = procs.free_port(), procs.free_port()
        conf = os.path.join(workdir, f"zipf-{n}.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(configs.under_test(port, runner.backend_port, listeners=n)
                    + f'webserver("127.0.0.1:{web}")\n'
                    + f'setWebserverConfig({{apiKey="{API_KEY}"}})\n')
        proc = group.start([*pydist, "--supervised", "--disable-syslog", "-C", conf],
                           os.path.join(workdir, f"zipf-{n}.log"), cwd=repo_root)
        try:
            if not procs.wait_answering(proc, port).ok:
                raise ServerFailed(f"pydist x{n} did not answer")
            base = _hit_rate(web)
            cmd = dnsperf.command(port, path, seconds=seconds, max_passes=1, rate=MIX_RATE,
                                  clients=s.clients, outstanding=s.outstanding)
            subprocess.run(cmd, capture_output=True, timeout=seconds + 30, check=False)
            h = _hit_rate(web)
            h.queries -= base.queries
            h.backend -= base.backend
            out.append(f"pydist x{n:<2} {h.queries:>7} queries {h.backend:>7} to the backend  "
                       f"hit rate {h.rate:6.1%}  RSS summed {procs.rss_kib(proc.pid) / 1024:6.1f}M"
                       f"  PSS summed {pss_kib(proc.pid) / 1024:6.1f}M")
        finally:
            group.stop(proc)
    return out


def _hit_rate(web: int) -> HitRate:
    req = urllib.request.Request(f"http://127.0.0.1:{web}/api/v1/servers/localhost/statistics",
                                 headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(req, timeout=5) as resp:
        stats = {e["name"]: e["value"] for e in json.load(resp)}
    return HitRate("", int(stats["queries"]), int(stats["responses"]))


def run(settings: Settings, pydist: list[str], dnsdist: str, counts: list[int], workdir: str,
        repo_root: str, group: procs.ProcessGroup, log: Callable[[str], None],
        mix_seconds: float) -> int:
    sides = [Side("pydist", pydist), Side("dnsdist", [dnsdist])]
    rows = qps_rows(settings, sides, counts, dnsdist, workdir, repo_root, group, log)
    print(table(rows))
    print("# xN: N reusePort listeners (dnsdist: N threads; pydist: N worker processes); "
          "nothing pinned; µs/q and RSS summed over every process of the server; dnsperf "
          f"-c {clients_for(counts, settings.clients)} for every run (both servers)")
    lines = zipf_mix(settings, pydist, counts, dnsdist, workdir, repo_root, group, log,
                     mix_seconds)
    print()
    print("\n".join(lines))
    print("# each worker holds its own packet cache (same names missed once per worker); "
          "the config, Lua state and code pages are shared copy-on-write from the supervisor")
    return 0
