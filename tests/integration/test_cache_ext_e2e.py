"""pydist's cache features seen from clients (issue 20): serve-stale and prefetch against a
backend the test controls, snapshots across a restart, and the shared level in a live Redis
(two pydist processes, ECS scoping, Redis killed, flushed and fed garbage mid-traffic)."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dnslib
import pytest

from pydist.cache import PacketCache
from pydist.cache_redis import redis_key
from pydist.dns.reader import name_end
from tests.conftest import Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query, run_cli
from tests.helpers.redis_server import RedisServer
from tests.helpers.responder import Responder, default_handler

OPTS = "\npydist.cacheOptions(pc, {%s})\n"


def counters(proc: DnsdistProcess) -> dict[str, int]:
    out = run_cli("pydist", ["-C", str(proc.conf), "-e", "pydist.cacheStats()"]).stdout
    return {k: int(v) for k, v in re.findall(r"(cache-[\w-]+)\s+(\d+)", out)}


def stat(proc: DnsdistProcess, name: str) -> int:
    out = run_cli("pydist", ["-C", str(proc.conf), "-e", "dumpStats()"]).stdout
    return int(re.search(rf"(?m)(?:^|\s){re.escape(name)}\s+(\d+)", out).group(1))


def start(start_proc: Starter, backend: Responder, opts: str, extra: str = "",
          ready: str | None = "auto", cache: int = 20000) -> DnsdistProcess:
    conf = console_prelude(cache=cache) + extra + OPTS % opts
    return start_proc("pydist", conf, {"backend": backend.address}, ready=ready)


@pytest.fixture
def redis_server():
    r = RedisServer().start()
    try:
        yield r
    finally:
        r.stop()


class Switchable:
    """A backend handler the test steers: TTL, address, SERVFAIL, slowness. SERVFAIL is for
    the test's names only: health checks (a.root-servers.net.) failing would mark the server
    down and race the refresh the test is about."""

    def __init__(self, ttl: int = 1) -> None:
        self.ttl = ttl
        self.address = "192.0.2.1"
        self.servfail = False
        self.delay = 0.0

    def __call__(self, q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
        if self.delay:
            time.sleep(self.delay)
        r = q.reply()
        if self.servfail and str(q.q.qname).endswith(".example."):
            r.header.rcode = 2
            return r
        r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.A, ttl=self.ttl,
                               rdata=dnslib.A(self.address)))
        return r


def ttl_of(msg: dns.message.Message) -> int:
    return msg.answer[0].ttl


# ---------------------------------------------------------------- serve-stale and prefetch

def test_stale_served_within_window_and_refreshed_once(start_proc: Starter,
                                                       responder_factory) -> None:
    h = Switchable(ttl=1)
    backend = responder_factory(h)
    proc = start(start_proc, backend, "staleWindow=30")
    assert ttl_of(query(proc.addr(), "pop.example.", timeout=3)) == 1
    h.ttl, h.address, h.delay = 300, "192.0.2.2", 0.5     # the refresh is slow and new
    first = poll_until(lambda: (lambda r: r if r and ttl_of(r) == 30 else None)(
        query(proc.addr(), "pop.example.", timeout=3)), timeout=5, interval=0.1)
    assert first.answer[0][0].address == "192.0.2.1"
    for _ in range(20):            # while the one refresh is in flight: stale, no new query
        r = query(proc.addr(), "pop.example.", timeout=3)
        assert r is not None and r.rcode() == dns.rcode.NOERROR
    fresh = poll_until(lambda: (lambda r: r if r and r.answer[0][0].address == "192.0.2.2"
                                else None)(query(proc.addr(), "pop.example.", timeout=3)), timeout=5)
    assert ttl_of(fresh) > 290
    assert backend.count("pop.example.") == 2          # the first query and ONE refresh
    c = counters(proc)
    assert c["cache-stale-served"] >= 21 and c["cache-stale-refreshes"] == 1


def test_timing_out_backend_gets_stale_answers_within_the_window_only(
        start_proc: Starter, responder_factory) -> None:
    h = Switchable(ttl=1)
    backend = responder_factory(h)
    proc = start(start_proc, backend, "staleWindow=3, refreshTimeout=0.3")
    assert query(proc.addr(), "win.example.") is not None
    backend.silent = True
    stale = poll_until(lambda: (lambda r: r if r and ttl_of(r) == 30 else None)(
        query(proc.addr(), "win.example.")), timeout=5, interval=0.1)
    assert stale.answer[0][0].address == "192.0.2.1"
    served_at = time.monotonic()
    # answered stale while the backend times out, until the window closes: then nothing
    last = [served_at]

    def window_closed() -> bool:
        sent = time.monotonic()
        if query(proc.addr(), "win.example.", timeout=0.5) is None:
            return True
        last[0] = sent                  # when the last query that got a stale answer left
        return False
    poll_until(window_closed, timeout=8, interval=0.05)
    assert last[0] - served_at <= 3.2     # the 3 s window, and the first stale answer's wait
    c = counters(proc)
    assert c["cache-stale-refreshes"] == 1 and c["cache-refresh-failures"] == 1
    assert c["cache-stale-served"] >= 2


def test_servfail_refresh_keeps_the_stale_answer(start_proc: Starter, responder_factory) -> None:
    h = Switchable(ttl=1)
    backend = responder_factory(h)
    proc = start(start_proc, backend, "staleWindow=30")
    assert query(proc.addr(), "sf.example.", timeout=3) is not None
    h.servfail = True
    poll_until(lambda: (lambda r: r and ttl_of(r) == 30)(query(proc.addr(), "sf.example.", timeout=3)),
               timeout=5, interval=0.1)
    poll_until(lambda: counters(proc).get("cache-refresh-failures") == 1, timeout=5,
               interval=0.1)
    for _ in range(10):
        r = query(proc.addr(), "sf.example.", timeout=3)
        assert r is not None and r.rcode() == dns.rcode.NOERROR and ttl_of(r) == 30
    assert backend.count("sf.example.") == 2


def test_prefetch_keeps_a_hot_name_from_expiring(start_proc: Starter, responder_factory) -> None:
    h = Switchable(ttl=2)
    backend = responder_factory(h)
    proc = start(start_proc, backend, "prefetch={minHits=2, remaining=60, qps=50}")
    end = time.monotonic() + 5
    while time.monotonic() < end:
        r = query(proc.addr(), "hot.example.", timeout=3)
        assert r is not None and r.rcode() == dns.rcode.NOERROR and ttl_of(r) >= 1
        time.sleep(0.1)            # a client's pace, not synchronisation
    assert stat(proc, "cache-misses") == 1             # never expired: one miss, ever
    assert backend.count("hot.example.") >= 3          # refreshed by prefetches
    assert counters(proc)["cache-prefetches"] >= 2


# ---------------------------------------------------------------- snapshots

def blast(where: tuple[str, int], names: list[str], window: int = 200) -> dict[str, int]:
    """Query every name over one UDP socket, a window at a time; name -> first answer TTL."""
    got: dict[str, int] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        for _attempt in range(5):
            todo = [n for n in names if n not in got]
            for i in range(0, len(todo), window):
                chunk = todo[i:i + window]
                for j, name in enumerate(chunk):
                    q = dns.message.make_query(name, "A")
                    q.id = j
                    s.sendto(q.to_wire(), where)
                for _ in chunk:
                    try:
                        data = s.recv(4096)
                    except TimeoutError:
                        break
                    m = dns.message.from_wire(data)
                    got[str(m.question[0].name)] = m.answer[0].ttl
            if len(got) == len(names):
                break
    return got


def test_snapshot_restart_with_10000_names(start_proc: Starter, responder_factory,
                                           tmp_path: Path) -> None:
    backend = responder_factory(default_handler(ttl=300))
    snap = tmp_path / "cache.snap"
    names = [f"n{i}.snap.example." for i in range(10000)]
    proc = start(start_proc, backend, f'snapshot="{snap}"')
    first = blast(proc.addr(), names)
    assert len(first) == 10000 and backend.count(".snap.example.") == 10000
    proc.stop()
    stopped = time.time()
    assert "Saved 10000 entries to the cache snapshot" in proc.output and snap.exists()
    again = start(start_proc, backend, f'snapshot="{snap}"')
    again.wait_for("Loaded 10000 entries from the cache snapshot")
    second = blast(again.addr(), names)
    down = int(time.time() - stopped)
    assert len(second) == 10000
    assert backend.count(".snap.example.") == 10000    # every one a hit
    assert all(ttl <= 300 - max(down - 1, 1) for ttl in second.values())
    assert counters(again)["cache-snapshot-loaded"] == 10000


def test_corrupted_snapshot_ignored_with_a_log_line(start_proc: Starter, responder: Responder,
                                                    tmp_path: Path) -> None:
    snap = tmp_path / "cache.snap"
    snap.write_bytes(b"PYDISTCACHE\x00" + bytes(range(256)) * 4)
    proc = start(start_proc, responder, f'snapshot="{snap}"')
    proc.wait_for(rf"Ignoring the cache snapshot '{re.escape(str(snap))}': checksum mismatch")
    assert query(proc.addr(), "ok.example.") is not None
    assert proc.output.count("Ignoring the cache snapshot") == 1


def test_save_on_demand_and_sigterm_exit_code(start_proc: Starter, responder: Responder,
                                              tmp_path: Path) -> None:
    snap, other = tmp_path / "a.snap", tmp_path / "b.snap"
    proc = start(start_proc, responder, f'snapshot="{snap}"')
    assert query(proc.addr(), "one.example.") is not None
    out = run_cli("pydist", ["-C", str(proc.conf), "-e", f'pydist.saveCache(pc, "{other}")'])
    assert out.stdout == f"Saved 1 entries to '{other}'\n" and other.exists()
    assert proc.stop() == -15                          # still dies of SIGTERM, as without


# ---------------------------------------------------------------- the shared level in Redis

def redis_opts(redis: RedisServer, timeout: float = 0.05) -> str:
    return f'redis="{redis.url}", redisTimeout={timeout}'


def test_two_instances_share_answers(start_proc: Starter, responder: Responder,
                                     redis_server: RedisServer) -> None:
    a = start(start_proc, responder, redis_opts(redis_server))
    b = start(start_proc, responder, redis_opts(redis_server))
    first = query(a.addr(), "shared.example.")
    assert first is not None and responder.count("shared.example.") == 1
    poll_until(lambda: redis_server.keys() == 1, timeout=5)
    second = query(b.addr(), "shared.example.")
    assert second is not None and second.answer[0][0].address == "192.0.2.1"
    assert responder.count("shared.example.") == 1     # no backend query from b
    assert ttl_of(second) <= ttl_of(first)
    assert counters(b)["cache-redis-hits"] == 1
    third = query(b.addr(), "shared.example.")         # now a local hit on b
    assert third is not None and counters(b)["cache-redis-hits"] == 1
    # answered from the cache's second level: a hit, not a miss, in dnsdist's counters
    assert stat(b, "cache-hits") == 2 and stat(b, "cache-misses") == 0
    # over TCP too (its own key, as dnsdist keys the transport)
    assert query(a.addr(), "shared.example.", tcp=True) is not None
    poll_until(lambda: redis_server.keys() == 2, timeout=5)
    over_tcp = query(b.addr(), "shared.example.", tcp=True)
    assert over_tcp is not None and over_tcp.answer[0][0].address == "192.0.2.1"
    assert responder.count("shared.example.") == 2     # a's TCP miss only
    assert counters(b)["cache-redis-hits"] == 2


def test_ecs_scoped_answers_never_cross_subnets(start_proc: Starter, responder_factory,
                                                redis_server: RedisServer) -> None:
    def by_subnet(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
        subnet = "none"
        for rr in q.ar:
            for opt in getattr(rr, "rdata", None) or []:
                if getattr(opt, "code", None) == 8:
                    subnet = ".".join(str(b) for b in opt.data[4:8])
        r = q.reply()
        r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.TXT, ttl=300, rdata=dnslib.TXT(subnet)))
        return r
    backend = responder_factory(by_subnet)
    extra = 'setECSSourcePrefixV4(32)\ngetServer(0):setAuto()\n'
    conf_server = '{address="{backend}", useClientSubnet=true}'

    def run() -> DnsdistProcess:
        conf = (console_prelude(backend=False, cache=1000)
                + f"newServer({conf_server})\n" + extra + OPTS % redis_opts(redis_server))
        return start_proc("pydist", conf, {"backend": backend.address})
    a, b = run(), run()

    def ask(proc: DnsdistProcess, source: str) -> str:
        q = dns.message.make_query("scoped.example.", "TXT")
        r = dns.query.udp(q, "127.0.0.1", port=proc.addr()[1], source=source, timeout=2)
        return r.answer[0][0].strings[0].decode()
    assert ask(a, "127.0.0.1") == "127.0.0.1"
    poll_until(lambda: redis_server.keys() == 1, timeout=5)
    assert ask(b, "127.0.0.2") == "127.0.0.2"          # another subnet: not a's answer
    assert backend.count("scoped.example.") == 2
    assert ask(b, "127.0.0.1") == "127.0.0.1"          # a's subnet: shared
    assert backend.count("scoped.example.") == 2
    c = counters(b)
    assert c["cache-redis-hits"] == 1 and c["cache-redis-misses"] == 1


def test_redis_killed_mid_traffic_loses_no_query(start_proc: Starter, responder: Responder,
                                                 redis_server: RedisServer) -> None:
    proc = start(start_proc, responder, redis_opts(redis_server, 0.02))
    lost: list[str] = []
    answered = 0
    for i in range(300):
        if i == 100:
            redis_server.stop()
        if i == 200:
            redis_server.start()
        name = f"k{i}.example."
        r = query(proc.addr(), name, timeout=2)
        if r is None or r.rcode() != dns.rcode.NOERROR:
            lost.append(name)
        else:
            answered += 1
    assert lost == [] and answered == 300
    more = iter(range(300, 10000))

    def resumed() -> bool:      # Redis is left alone for a second after an error, then used
        r = query(proc.addr(), f"k{next(more)}.example.")
        assert r is not None and r.rcode() == dns.rcode.NOERROR
        return redis_server.keys() > 0
    poll_until(resumed, timeout=5)
    c = counters(proc)
    assert c["cache-redis-errors"] + c["cache-redis-skipped"] >= 1
    assert c["cache-redis-errors"] >= 1
    assert "is unreachable" in proc.output and "reachable again" in proc.output


def test_redis_flushed_or_garbage_goes_to_the_backend(start_proc: Starter, responder: Responder,
                                                      redis_server: RedisServer) -> None:
    a = start(start_proc, responder, redis_opts(redis_server))
    b = start(start_proc, responder, redis_opts(redis_server))
    assert query(a.addr(), "flushed.example.") is not None
    poll_until(lambda: redis_server.keys() == 1, timeout=5)
    assert redis_server.command(b"FLUSHALL") == b"+OK\r\n"
    assert query(b.addr(), "flushed.example.") is not None
    assert responder.count("flushed.example.") == 2
    # garbage under the very key pydist reads
    q = dns.message.make_query("garbage.example.", "A").to_wire()
    key = PacketCache(10).make_key(q, name_end(q, 12))
    rkey = redis_key(b"", True, key, None)
    # the key as pydist computes it for b's query (flags and EDNS as dnspython sends them)
    assert redis_server.command(b"SET", rkey, b"PDC1 not an answer") == b"+OK\r\n"
    r = query(b.addr(), "garbage.example.")
    assert r is not None and r.rcode() == dns.rcode.NOERROR
    assert responder.count("garbage.example.") == 1
    assert counters(b)["cache-redis-errors"] == 1


def test_metrics_and_api_list_the_counters_only_when_configured(
        start_proc: Starter, responder: Responder) -> None:
    from tests.helpers.web import request
    web = '\nwebserver("127.0.0.1:{portweb}")\nsetWebserverConfig({apiKey="k"})\n'
    plain = start_proc("pydist", console_prelude(cache=100) + web,
                       {"backend": responder.address})
    configured = start(start_proc, responder, "staleWindow=10", extra=web)
    for proc, present in ((plain, False), (configured, True)):
        port = int(proc.values["portweb"])
        _, _, metrics = request(port, "/metrics", {"X-API-Key": "k"})
        assert (b"# TYPE dnsdist_cache_stale_served counter" in metrics) is present
        assert shutil.which("promtool"), "promtool is required (Debian prometheus)"
        lint = subprocess.run(["promtool", "check", "metrics"], input=metrics,
                              capture_output=True)
        # the text parses; the only lint is dnsdist's own naming (counters without _total)
        problems = [ln for ln in (lint.stdout + lint.stderr).decode().splitlines()
                    if not ln.endswith('should have "_total" suffix')]
        assert problems == []
        _, _, body = request(port, "/api/v1/servers/localhost/statistics", {"X-API-Key": "k"})
        assert (b'"cache-stale-served"' in body) is present
        dump = run_cli("pydist", ["-C", str(proc.conf), "-e", "dumpStats()"]).stdout
        assert ("cache-redis-hits" in dump) is present


def test_same_config_runs_on_dnsdist(tmp_path: Path) -> None:
    """The issue's example config: the `if pydist then` block is skipped by dnsdist."""
    conf = tmp_path / "c.conf"
    conf.write_text('setLocal("127.0.0.1:5399")\npc = newPacketCache(100000, {maxTTL=86400})\n'
                    'getPool(""):setCache(pc)\nif pydist then\n  pydist.cacheOptions(pc, {\n'
                    '    staleWindow = 3600, prefetch = {minHits = 3, remaining = 10},\n'
                    f'    snapshot = "{tmp_path}/cache.snap",\n'
                    '    redis = "redis://127.0.0.1:6379/0", redisTimeout = 0.002,\n  })\nend\n')
    for impl in ("pydist", "dnsdist"):
        res = run_cli(impl, ["--check-config", "-C", str(conf)])
        assert res.returncode == 0 and f"Configuration '{conf}' OK!" in res.stdout, res.stdout



@pytest.mark.parametrize("opts,message", [
    ('redis="localhost:6379"', "redis wants a redis://, rediss:// or unix:// URL"),
    ("redisTimeout=0", "redisTimeout must be positive"),
    ("prefetch={remaining=100}", "0 < remaining < 100"),
    ("prefetch=3", "prefetch must be a table"),
])
def test_bad_options_are_config_errors(tmp_path: Path, opts: str, message: str) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text(f"pc = newPacketCache(10)\npydist.cacheOptions(pc, {{{opts}}})\n")
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 1 and message in res.stdout + res.stderr


def test_unknown_option_warned_and_wrong_object_refused(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("pc = newPacketCache(10)\npydist.cacheOptions(pc, {staleWindw=5})\n")
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 0
    assert "Warning: pydist.cacheOptions: unknown option 'staleWindw' ignored" in res.stdout
    conf.write_text("pydist.cacheOptions(newServer('127.0.0.1:1'), {staleWindow=5})\n")
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 1 and "must be a packet cache" in res.stdout + res.stderr
