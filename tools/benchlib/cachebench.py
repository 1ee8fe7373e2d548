"""`tools/bench --cache`: figures for pydist's own cache features (issue 20), pydist against
pydist with the feature off, since dnsdist has none of them. Short runs, loopback only.

* redis-miss: cache misses over UDP (unique names) with the Redis level off and on: QPS and CPU
  µs per query at full speed, p50/p99 latency at a fixed 2,000 qps;
* share-hitrate: a Zipf-like mix (50,000 names, s = 1.0). Instance A takes a first sample;
  then B (sharing A's Redis) and C (alone) each take a second sample at the same rate: their
  hit rates (1 - backend answers / queries);
* warm-restart: an instance warmed by the mix is stopped (SIGTERM writes its snapshot) and
  started again with the snapshot (warm) and without it (cold): hit rate of the first 10 s.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from . import configs, dnsperf, procs
from .runner import Runner, ServerFailed, Settings, Side
from .scenarios import Scenario

ZIPF_NAMES = 50_000
ZIPF_S = 1.0
MIX_RATE = 2000          # qps of the hit-rate runs (a client population, not a flood)
API_KEY = "bench"
MISS = Scenario("redis-miss", "cache misses over UDP (unique names), Redis level off/on",
                "unique")
MISS_LATENCY = Scenario("redis-miss-lat", "cache misses over UDP at 2,000 qps, latency",
                        "unique", rate=2000, latency=True)


def zipf_file(path: str, count: int, seed: int) -> str:
    """``count`` A queries drawn from ZIPF_NAMES names with Zipf(ZIPF_S) popularity."""
    rnd = random.Random(seed)
    weights = [1.0 / (rank ** ZIPF_S) for rank in range(1, ZIPF_NAMES + 1)]
    names = rnd.choices(range(ZIPF_NAMES), weights=weights, k=count)
    with open(path, "w", encoding="ascii") as f:
        f.writelines(f"z{n}.zipf.example. A\n" for n in names)
    return path


def cache_options(**opts: str) -> str:
    """A `pydist.cacheOptions` block (skipped by dnsdist)."""
    body = ", ".join(f"{k}={v}" for k, v in opts.items())
    return f"if pydist then pydist.cacheOptions(pc, {{{body}}}) end\n"


@dataclass
class HitRate:
    label: str
    queries: int
    backend: int

    @property
    def rate(self) -> float:
        return 1 - self.backend / self.queries if self.queries else 0.0


class RedisProc:
    """redis-server on a free port without persistence, stopped by its process."""

    def __init__(self, group: procs.ProcessGroup, workdir: str) -> None:
        self.port = procs.free_port()
        self.proc = group.start(["redis-server", "--port", str(self.port), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no"],
                                os.path.join(workdir, "redis.log"))
        self.group = group
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True
                             ).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise ServerFailed("redis-server did not answer")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class CacheBench:
    def __init__(self, settings: Settings, pydist: list[str], dnsdist: str, workdir: str,
                 repo_root: str, group: procs.ProcessGroup, log: Callable[[str], None]) -> None:
        self.s = settings
        self.pydist = pydist
        self.dnsdist = dnsdist
        self.workdir = workdir
        self.repo_root = repo_root
        self.group = group
        self.log = log

    def redis_miss(self, redis: RedisProc) -> dict[str, object]:
        """The existing runner, the two sides being pydist without and with the Redis level."""
        sides = [Side("pydist", self.pydist),
                 Side("pydist+redis", self.pydist,
                      cache_options(redis=f'"{redis.url}"', redisTimeout="0.002"))]
        runner = Runner(self.s, sides, self.dnsdist, self.workdir, self.repo_root, self.group,
                        self.log)
        runner.start_backend()
        self.backend_port = runner.backend_port
        return {sc.name: runner.run(sc) for sc in (MISS, MISS_LATENCY)}

    # --- hit-rate scenarios: one pydist per configuration, driven by dnsperf at MIX_RATE
    def _start(self, name: str, extra: str) -> tuple[subprocess.Popen[bytes], int, int]:
        port, web = procs.free_port(), procs.free_port()
        text = configs.under_test(port, self.backend_port) + extra + \
            f'webserver("127.0.0.1:{web}")\nsetWebserverConfig({{apiKey="{API_KEY}"}})\n'
        conf = os.path.join(self.workdir, f"{name}.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(text)
        argv = procs.pinned(self.s.server_core,
                            [*self.pydist, "--supervised", "--disable-syslog", "-C", conf])
        proc = self.group.start(argv, os.path.join(self.workdir, f"{name}.log"),
                                cwd=self.repo_root)
        if not procs.wait_answering(proc, port).ok:
            raise ServerFailed(f"{name} did not answer")
        return proc, port, web

    def _drive(self, port: int, path: str, seconds: float) -> None:
        cmd = dnsperf.command(port, path, seconds=seconds, max_passes=1, rate=MIX_RATE,
                              clients=self.s.clients, outstanding=self.s.outstanding)
        subprocess.run(procs.pinned(self.s.load_core, cmd), capture_output=True,
                       timeout=seconds + 30, check=False)

    def _hit_rate(self, label: str, web: int, before: HitRate | None = None) -> HitRate:
        """Queries and backend answers so far (minus ``before``: warming probes)."""
        req = urllib.request.Request(f"http://127.0.0.1:{web}/api/v1/servers/localhost/"
                                     "statistics", headers={"X-API-Key": API_KEY})
        with urllib.request.urlopen(req, timeout=5) as resp:
            stats = {e["name"]: e["value"] for e in json.load(resp)}
        h = HitRate(label, int(stats["queries"]), int(stats["responses"]))
        if before is not None:
            h.queries -= before.queries
            h.backend -= before.backend
        return h

    def share_hitrate(self, redis: RedisProc, seconds: float) -> list[HitRate]:
        shared = cache_options(redis=f'"{redis.url}"', redisTimeout="0.005")
        count = int(MIX_RATE * seconds)
        first = zipf_file(os.path.join(self.workdir, "zipf1.txt"), count, 1)
        second = zipf_file(os.path.join(self.workdir, "zipf2.txt"), count, 2)
        a = self._start("share-a", shared)
        self._drive(a[1], first, seconds)
        out = [self._hit_rate("A (first sample)", a[2])]
        for label, extra in (("B sharing A's Redis", shared), ("C alone", "")):
            proc, port, web = self._start("share-" + label[0].lower(), extra)
            base = self._hit_rate(label, web)
            self._drive(port, second, seconds)
            out.append(self._hit_rate(label, web, base))
            self.group.stop(proc)
        self.group.stop(a[0])
        return out

    def warm_restart(self, seconds: float, warm_seconds: float) -> list[HitRate]:
        snap = os.path.join(self.workdir, "cache.snap")
        with_snap = cache_options(snapshot=f'"{snap}"')
        count = int(MIX_RATE * max(seconds, warm_seconds))
        warmup = zipf_file(os.path.join(self.workdir, "zipf3.txt"), count, 3)
        after = zipf_file(os.path.join(self.workdir, "zipf4.txt"), int(MIX_RATE * seconds), 4)
        proc, port, _ = self._start("warm-0", with_snap)
        self._drive(port, warmup, warm_seconds)
        self.group.stop(proc)                  # SIGTERM: the snapshot is written
        out = []
        for label, extra in (("warm start (snapshot)", with_snap), ("cold start", "")):
            proc, port, web = self._start("warm-" + label[0], extra)
            base = self._hit_rate(label, web)
            self._drive(port, after, seconds)
            out.append(self._hit_rate(label, web, base))
            self.group.stop(proc)
        return out


def run(settings: Settings, pydist: list[str], dnsdist: str, workdir: str, repo_root: str,
        group: procs.ProcessGroup, log: Callable[[str], None], mix_seconds: float) -> int:
    """Every cache scenario, printed as it finishes; 0 when all ran."""
    from .report import row, table
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        log("tools/bench --cache: redis-server and redis-cli are needed (Debian redis-server)")
        return 2
    bench = CacheBench(settings, pydist, dnsdist, workdir, repo_root, group, log)
    redis = RedisProc(group, workdir)
    log("[redis-miss] misses with the Redis level off (left) and on (right)")
    results = bench.redis_miss(redis)
    print(table([row(name, r["pydist"], r["pydist+redis"]) for name, r in results.items()],
                ("off", "redis")))
    print("# off: pydist without the Redis level; redis: with it (loopback, redisTimeout 2 ms)")
    log(f"[share-hitrate] Zipf mix at {MIX_RATE} qps, {mix_seconds:g} s per sample")
    rates = bench.share_hitrate(redis, mix_seconds)
    log(f"[warm-restart] first {mix_seconds:g} s after a restart, with and without snapshot")
    rates += bench.warm_restart(mix_seconds, mix_seconds)
    print()
    for h in rates:
        print(f"{h.label:<28} {h.queries:>7} queries  {h.backend:>7} to the backend  "
              f"hit rate {h.rate:.1%}")
    errors = [e for r in results.values() for s in r.values() if (e := s.error)]
    for e in errors:
        print("# FAILED: " + e.replace("\n", "\n#   "))
    return 1 if errors else 0
