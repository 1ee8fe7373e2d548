"""Worker processes (pydist.workers, issue 18 item 2): N forked workers serve the listeners,
the supervisor keeps the console, web server and health checks, and every figure is summed.

Which worker serves a query is the kernel's choice (SO_REUSEPORT hashes the source address
and port), so the tests send from many source ports; a fixed source port always reaches the
same worker, which lets the restart test tell the workers' clients apart."""
from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import time

import dns.message
import dns.rcode

from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query, run_cli
from tests.helpers.web import metric_samples, request

WEB = 'webserver("127.0.0.1:{portweb}")\nsetWebserverConfig({apiKey="k", acl="127.0.0.0/8"})\n'
QUERIES = 40


def console(proc: DnsdistProcess, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def children(proc: DnsdistProcess) -> list[int]:
    assert proc.proc is not None
    pid = proc.proc.pid
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def wait_children(proc: DnsdistProcess, n: int) -> list[int]:
    return poll_until(lambda: len(children(proc)) == n and children(proc), 10)  # type: ignore


def stats(proc: DnsdistProcess) -> dict[str, str]:
    return dict(re.findall(r"(\S+)\s*\t\s*(\S+)", console(proc, "dumpStats()")))


def send_many(where: tuple[str, int], prefix: str, n: int = QUERIES,
              suffix: str = "example.") -> list[str]:
    """n queries, each from a fresh source port; the rcode of each answer."""
    out = []
    for i in range(n):
        r = query(where, f"{prefix}{i}.{suffix}", timeout=3)
        assert r is not None, f"query {i} unanswered"
        out.append(dns.rcode.to_text(r.rcode()))
    return out


# --- where N comes from

def test_workers_flag_gives_n_processes(start_proc, responder):
    p = start_proc("pydist", console_prelude(), {"backend": responder.address},
                   extra_args=("--workers", "3"))
    assert len(wait_children(p, 3)) == 3
    assert send_many(p.addr(), "flag", 10) == ["NOERROR"] * 10


def test_set_workers_gives_n_processes(start_proc, responder):
    p = start_proc("pydist", console_prelude() + "pydist.setWorkers(2)\n",
                   {"backend": responder.address})
    assert len(wait_children(p, 2)) == 2
    assert "pydist.setWorkers cannot be used at runtime!" in console(p, "pydist.setWorkers(3)")


def test_reuseport_listeners_give_one_worker_each(start_proc, responder):
    conf = console_prelude() + 'addLocal("127.0.0.1:{port2}", {reusePort=true})\n' \
        'addLocal("127.0.0.1:{port2}", {reusePort=true})\n'
    p = start_proc("pydist", conf, {"backend": responder.address})
    assert len(wait_children(p, 2)) == 2
    assert send_many(p.addr("port2"), "rp", 10) == ["NOERROR"] * 10
    binds = console(p, "showBinds()")
    assert binds.count(f"127.0.0.1:{p.values['port2']}") == 4     # UDP and TCP, twice


def test_default_is_one_process(start_proc, responder):
    p = start_proc("pydist", console_prelude(), {"backend": responder.address})
    assert query(p.addr(), "one.example.") is not None
    assert children(p) == []
    assert "worker-restarts" not in console(p, "dumpStats()")


# --- summed figures

def _figures(p: DnsdistProcess) -> dict[str, object]:
    st = stats(p)
    dump = {k: st[k] for k in ("queries", "responses", "rdqueries", "frontend-noerror",
                               "frontend-nxdomain", "cache-hits", "cache-misses",
                               "latency-count", "rule-refused", "acl-drops")}
    rows = [line.split() for line in console(p, "showServers()").splitlines()
            if line.split() and line.split()[0].isdigit()]
    servers = [(r[1], r[3], r[8], r[9]) for r in rows]       # name, state, queries, drops
    status, _, body = request(int(p.values["portweb"]), "/metrics", {"X-API-Key": "k"})
    assert status == 200
    samples = metric_samples(body.decode())
    port = str(p.values["port"])
    metrics = {k.replace(port, "PORT"): v for k, v in samples.items()
               if k.split("{")[0] in ("dnsdist_queries", "dnsdist_responses", "dnsdist_rdqueries",
                                      "dnsdist_server_queries", "dnsdist_server_responses",
                                      "dnsdist_frontend_queries", "dnsdist_rule_refused",
                                      "dnsdist_frontend_nxdomain")}
    status, _, body = request(int(p.values["portweb"]), "/jsonstat?command=stats",
                              {"X-API-Key": "k"})
    assert status == 200
    jsonstat = {k: v for k, v in json.loads(body).items()
                if k in ("queries", "responses", "rdqueries", "frontend-nxdomain")}
    top = console(p, "topQueries(2, 1)")
    return {"dump": dump, "servers": servers, "metrics": metrics, "jsonstat": jsonstat,
            "top": top}


def test_summed_counters_equal_one_and_two_workers(start_proc, responder):
    conf = console_prelude() + WEB + 'addAction(QNameRule("refused.example."), ' \
        'RCodeAction(DNSRCode.REFUSED))\n'
    figures = []
    for n in ("1", "2"):
        p = start_proc("pydist", conf, {"backend": responder.address},
                       extra_args=("--workers", n))
        if n == "2":
            wait_children(p, 2)
        assert set(send_many(p.addr(), "wq")) == {"NOERROR"}
        assert set(send_many(p.addr(), "sub", 10, "nx.test.")) == {"NXDOMAIN"}
        assert query(p.addr(), "refused.example.").rcode() == dns.rcode.REFUSED
        figures.append(_figures(p))
        p.stop()
    one, two = figures
    assert one["dump"]["queries"] == str(QUERIES + 11)
    assert one == two


# --- runtime changes reach every worker

def test_console_add_action_applies_in_every_worker(start_proc, responder):
    p = start_proc("pydist", console_prelude(), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    assert set(send_many(p.addr(), "before")) == {"NOERROR"}
    console(p, 'addAction(AllRule(), RCodeAction(DNSRCode.REFUSED), {name="all"})')
    assert send_many(p.addr(), "after") == ["REFUSED"] * QUERIES
    rules = console(p, "showRules()")
    assert re.search(rf"all\s+{QUERIES}\s+All", rules), rules
    # the rule has one UUID in every process: removing it by UUID works everywhere
    uuid = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", console(p, "showRules({showUUIDs=true})"))
    assert uuid is not None
    console(p, f'rmRule("{uuid.group(0)}")')
    assert set(send_many(p.addr(), "removed")) == {"NOERROR"}


def test_runtime_new_server_reaches_workers(start_proc, responder, responder_factory):
    other = responder_factory()
    p = start_proc("pydist", console_prelude(), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    console(p, f'newServer{{address="{other.address}", pool="b"}}')
    console(p, 'addAction(AllRule(), PoolAction("b"))')
    poll_until(lambda: "up" in console(p, "showServers()").splitlines()[2], 10)
    send_many(p.addr(), "pool", 20)
    assert len([q for q in other.queries if q[0].startswith("pool")]) == 20


# --- health checks

def _checks(responder, name: str) -> int:
    return len([q for q in responder.queries if q[0].startswith(name)])


def _uptime(p: DnsdistProcess) -> int:
    return int(stats(p)["uptime"])


def _checked_by_three_workers(start_proc, responder, name: str, interval: int):
    conf = console_prelude(backend=False) + 'newServer({address="{backend}", ' \
        f'checkName="{name}.", checkInterval={interval}}})\n'
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "3"))
    wait_children(p, 3)
    return p


def test_initial_health_check_made_once_whatever_n(start_proc, responder):
    p = _checked_by_three_workers(start_proc, responder, "once.workers.test", 3600)
    assert set(send_many(p.addr(), "served", 10)) == {"NOERROR"}
    u0 = _uptime(p)
    poll_until(lambda: _uptime(p) >= u0 + 2, 10)      # two more ticks of the supervisor
    assert _checks(responder, "once.workers.test") == 1


def test_one_health_check_per_interval_whatever_n(start_proc, responder):
    p = _checked_by_three_workers(start_proc, responder, "check.workers.test", 1)
    u0, c0 = _uptime(p), _checks(responder, "check.workers.test")
    poll_until(lambda: _uptime(p) >= u0 + 4, 15)
    u1, c1 = _uptime(p), _checks(responder, "check.workers.test")
    # one check per second of the supervisor's clock (four checkers would make four)
    assert u1 - u0 - 1 <= c1 - c0 <= u1 - u0 + 1, (c1 - c0, u1 - u0)


def test_health_state_reaches_workers(start_proc, responder):
    conf = console_prelude(backend=False) + 'newServer({address="{backend}", checkInterval=1})\n'
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    assert set(send_many(p.addr(), "up", 10)) == {"NOERROR"}
    responder.silent = True
    p.wait_for(r"Marking downstream .* as 'down'")
    # no server up: every worker drops (dnsdist's default without setServFailWhenNoServer)
    for i in range(10):
        assert query(p.addr(), f"down{i}.example.", timeout=0.3) is None


# --- a worker that dies

def _bound_clients(n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        out.append(s)
    return out


def _ask_all(where: tuple[str, int], clients: list[socket.socket], tag: str,
             wait: float) -> set[int]:
    """One query from each client socket; the indexes of those answered within `wait`."""
    ids = {}
    for i, s in enumerate(clients):
        q = dns.message.make_query(f"{tag}{i}.example.", "A")
        ids[i] = q.id
        s.sendto(q.to_wire(), where)
    answered: set[int] = set()
    deadline = time.monotonic() + wait
    while len(answered) < len(clients):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(clients, [], [], left)
        for s in ready:
            data = s.recv(4096)
            i = clients.index(s)
            if len(data) >= 2 and int.from_bytes(data[:2], "big") == ids[i]:
                answered.add(i)
    return answered


def test_killed_worker_restarted_others_lose_nothing(start_proc, responder):
    p = start_proc("pydist", console_prelude(), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    victim, survivor = wait_children(p, 2)
    clients = _bound_clients(32)
    try:
        assert _ask_all(p.addr(), clients, "warm", 5) == set(range(32))
        os.kill(victim, signal.SIGSTOP)        # its clients stop being answered: find them
        others = _ask_all(p.addr(), clients, "stopped", 1.0)
        assert 0 < len(others) < 32
        os.kill(victim, signal.SIGKILL)
        # the surviving worker's clients: every query answered while the victim is down
        for round_ in range(3):
            assert _ask_all(p.addr(), [clients[i] for i in sorted(others)],
                            f"meanwhile{round_}-", 3) == set(range(len(others)))
        p.wait_for(rf"Worker \d \(pid {victim}\) killed by signal 9, restarting it")
        new = wait_children(p, 2)
        assert survivor in new and victim not in new
        assert _ask_all(p.addr(), clients, "after", 5) == set(range(32))
    finally:
        for s in clients:
            s.close()
    assert stats(p)["worker-restarts"] == "1"


def test_restart_counter_in_metrics(start_proc, responder):
    p = start_proc("pydist", console_prelude() + WEB, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    victim = wait_children(p, 2)[0]
    os.kill(victim, signal.SIGKILL)
    p.wait_for(r"Worker \d \(pid \d+\) killed by signal 9, restarting it")
    wait_children(p, 2)
    status, _, body = request(int(p.values["portweb"]), "/metrics", {"X-API-Key": "k"})
    assert status == 200
    assert metric_samples(body.decode())["dnsdist_worker_restarts{}"] == 1



# --- dynamic blocks: rules on the supervisor's rings (every worker's queries), blocks in all

def test_dynamic_block_from_all_workers_traffic_applies_everywhere(start_proc, responder):
    conf = console_prelude() + """
local dbr = dynBlockRulesGroup()
dbr:setQueryRate(30, 5, "Exceeded query rate", 60)
function maintenance() dbr:apply() end
"""
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    # 200 queries over many source ports: past 30 qps over 5 s (150) only when both
    # workers' rings are summed (each worker serves about half)
    send_many(p.addr(), "rate", 200)
    p.wait_for(r"Inserting dynamic block for 127\.0\.0\.1/32 for 60 seconds: Exceeded query rate")
    # the blocks reach the workers at the end of the tick that logged the line
    poll_until(lambda: query(p.addr(), "first.blocked.example.", timeout=0.3) is None, 5)
    before = int(stats(p)["dyn-blocked"])
    dropped = [query(p.addr(), f"blocked{i}.example.", timeout=0.3) for i in range(20)]
    assert dropped == [None] * 20
    assert int(stats(p)["dyn-blocked"]) == before + 20
    shown = console(p, "showDynBlocks()")
    assert re.search(rf"127\.0\.0\.1/32\s+\d+\s+{before + 20}\s+false", shown), shown


def test_tcp_queries_served_by_workers(start_proc, responder):
    p = start_proc("pydist", console_prelude(), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    for i in range(10):
        r = query(p.addr(), f"tcp{i}.example.", tcp=True, timeout=3)
        assert r is not None and r.rcode() == dns.rcode.NOERROR
    assert stats(p)["queries"] == "10"
    rows = console(p, "showBinds()")
    assert rows.count(f"127.0.0.1:{p.values['port']}") == 2


def test_cache_figures_summed(start_proc, responder):
    p = start_proc("pydist", console_prelude(cache=1000), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    for round_ in range(3):
        send_many(p.addr(), "cached", 20)
    st = stats(p)
    assert int(st["cache-hits"]) + int(st["cache-misses"]) == 60, st
    assert 20 <= int(st["cache-misses"]) <= 40, st    # each name missed once per worker at most
    printed = console(p, "getPool(''):getCache():printStats()")
    entries = int(re.search(r"Entries: (\d+)/", printed).group(1))
    assert entries == int(st["cache-misses"]), (printed, st)
    console(p, "getPool(''):getCache():expunge(0)")         # a cache change reaches all
    assert "Entries: 0/" in console(p, "getPool(''):getCache():printStats()")
    console(p, "getServer(0):setDown()")                    # so does a server's state
    assert query(p.addr(), "cached0.example.", timeout=0.5) is None   # no cache, no server
    assert all(query(p.addr(), f"down{i}.example.", timeout=0.3) is None for i in range(10))


def test_console_shutdown_ends_every_process(start_proc, responder):
    p = start_proc("pydist", console_prelude(), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    pids = wait_children(p, 2)
    run_cli("pydist", ["-C", str(p.conf), "-e", "shutdown()"])
    assert p.wait_exit(10) == 0
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_large_reports_after_heavy_traffic(start_proc, responder):
    """Ring shipments larger than a socket buffer reach the supervisor whole (no stall, no
    worker killed for silence)."""
    p = start_proc("pydist", console_prelude(cache=10000), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    clients = _bound_clients(16)
    try:
        answered = 0
        for round_ in range(700):
            answered += len(_ask_all(p.addr(), clients, f"heavy{round_ % 5}-", 5))
    finally:
        for s in clients:
            s.close()
    assert answered == 11200
    st = stats(p)
    assert st["queries"] == "11200" and st["worker-restarts"] == "0", st
    # each worker's rings hold half the configured 10,000 (dnsdist's ring shards): more than
    # 5,000 queries shown means both workers' shipments arrived whole
    assert len(console(p, "grepq('127.0.0.1', 20000)").splitlines()) > 5000 + 100


# --- other listeners and exporters

def start_dot_workers(start_proc, responder, tmp_path,
                      options: str = "") -> tuple[DnsdistProcess, str]:
    """Two workers serving a DoT listener on {portdot} (`options`: its Lua table's fields);
    -> the process and the CA's path."""
    from tests.helpers.dot import make_cert_set
    certs = make_cert_set(tmp_path / "certs")
    conf = console_prelude() + f'addTLSLocal("127.0.0.1:{{portdot}}", "{certs.cert}", ' \
        f'"{certs.key}", {{{options}}})\n'
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    return p, certs.ca_path


def test_dot_listener_served_by_workers(start_proc, responder, tmp_path):
    from tests.helpers.dot import dot_query
    p, ca_path = start_dot_workers(start_proc, responder, tmp_path)
    for i in range(6):
        r = dot_query(p.addr("portdot"), f"dot{i}.example.", ca_path)
        assert r is not None and r.rcode() == dns.rcode.NOERROR
    assert stats(p)["queries"] == "6"


def test_carbon_sends_the_sum(start_proc, responder):
    from tests.helpers.receivers import serve_connections
    batches: list[str] = []

    def read(conn: socket.socket) -> None:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        batches.append(data.decode())
    carbon = serve_connections(read)
    conf = console_prelude() + f'carbonServer("127.0.0.1:{carbon}", "h", 1)\n'
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    send_many(p.addr(), "carbon", 20)

    def queries_sent() -> bool:
        return any(re.search(r"^dnsdist\.h\.main\.queries 20 ", b, re.M) for b in batches)
    poll_until(queries_sent, 10)
    # one exporter: the supervisor's (workers would send batches of their own share)
    assert not any(re.search(r"^dnsdist\.h\.main\.queries (1\d|[1-9]) ", b, re.M)
                   for b in batches[-1:])


def test_doh_listener_served_by_workers(start_proc, responder):
    from tests.helpers.doh import client, do, query_wire
    conf = console_prelude() + 'addDOHLocal("127.0.0.1:{portdoh}")\n'
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    base = f"http://127.0.0.1:{p.values['portdoh']}"
    for i in range(6):
        with client(False, plain=True) as c:         # a new connection each: both workers
            r = do(c, base, "POST", "/dns-query", query_wire(f"doh{i}.example."),
                   {"content-type": "application/dns-message"})
        assert r.status == 200 and dns.message.from_wire(r.body).rcode() == dns.rcode.NOERROR
    assert stats(p)["queries"] == "6"
    # the listener's own counters are summed too (HTTP connects, HTTP/1 queries)
    row = next(line.split() for line in console(p, "showDOHFrontends()").splitlines()
               if line.split() and line.split()[0] == "0")
    assert row[2:4] == ["6", "6"], row


def test_bad_worker_counts_refused(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("pydist.setWorkers(0)\n")
    res = run_cli("pydist", ["--check-config", "-C", str(conf)])
    assert res.returncode == 1
    assert "pydist.setWorkers: the number of workers must be between 1 and 64, not 0" \
        in res.stdout + res.stderr
    conf.write_text("")
    res = run_cli("pydist", ["--workers", "x", "--check-config", "-C", str(conf)])
    assert res.returncode == 1
    assert "--workers takes a number from 1 to 64, not 'x'" in res.stderr


def test_reload_reaches_every_worker(start_proc, responder, tmp_path):
    p = start_proc("pydist", console_prelude() + WEB, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    pids = wait_children(p, 2)
    assert set(send_many(p.addr(), "before", 20)) == {"NOERROR"}
    p.conf.write_text(p.conf_text + 'addAction(AllRule(), RCodeAction(DNSRCode.REFUSED), '
                      '{name="reloaded"})\n')
    assert p.proc is not None
    os.kill(p.proc.pid, signal.SIGHUP)
    p.wait_for(r"Configuration reloaded in")
    assert send_many(p.addr(), "after") == ["REFUSED"] * QUERIES
    assert children(p) == pids
    rules = console(p, "showRules({showUUIDs=true})")
    assert re.search(rf"reloaded\s+[0-9a-f-]{{36}}\s+0\s+{QUERIES}\s+All", rules), rules
    # the counters from before the reload are kept, and summed
    assert stats(p)["queries"] == str(20 + QUERIES)
    # a worker restarted after the reload has the reloaded config
    os.kill(pids[0], signal.SIGKILL)
    p.wait_for(rf"Worker \d \(pid {pids[0]}\) killed by signal 9, restarting it")
    wait_children(p, 2)
    assert send_many(p.addr(), "restarted") == ["REFUSED"] * QUERIES
    uuid = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", rules).group(0)   # the same everywhere
    console(p, f'rmRule("{uuid}")')
    assert set(send_many(p.addr(), "removed", 10)) == {"NOERROR"}


def test_reload_adding_a_server_reaches_every_worker(start_proc, responder, responder_factory):
    other = responder_factory()
    p = start_proc("pydist", console_prelude(), {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    p.conf.write_text(p.conf_text + f'newServer{{address="{other.address}", pool="b"}}\n'
                      'addAction(AllRule(), PoolAction("b"))\n')
    assert "Reloaded:" in console(p, "pydist.reload()")
    p.wait_for(rf"Marking downstream {other.address} as 'up'")
    poll_until(lambda: query(p.addr(), "probe.example.", timeout=0.5) is not None, 5)
    send_many(p.addr(), "newpool", 20)
    assert len([q for q in other.queries if q[0].startswith("newpool")]) == 20
    rows = [line.split() for line in console(p, "showServers()").splitlines()
            if line.split() and line.split()[0].isdigit()]
    assert [r[8] for r in rows] == ["0", "21"], rows            # the Queries column


def test_server_state_set_by_maintenance_reaches_workers(start_proc, responder):
    conf = console_prelude() + """
function maintenance()
  if getStatisticsCounters()["queries"] >= 10 then getServer(0):setDown() end
end
"""
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    assert set(send_many(p.addr(), "counted", 10)) == {"NOERROR"}
    poll_until(lambda: "DOWN" in console(p, "showServers()"), 5)
    poll_until(lambda: query(p.addr(), "probe.example.", timeout=0.3) is None, 5)
    assert all(query(p.addr(), f"gone{i}.example.", timeout=0.3) is None for i in range(10))


def test_query_counters_summed(start_proc, responder):
    p = start_proc("pydist", console_prelude() + "setQueryCount(true)\n",
                   {"backend": responder.address}, extra_args=("--workers", "2"))
    wait_children(p, 2)
    for _ in range(2):
        send_many(p.addr(), "qc", 10)
    out = console(p, "getQueryCounters()")
    assert "(10 records in buffer)" in out, out
    assert out.count(": 2 request(s)") == 10, out
    assert "10 records cleared" in console(p, "clearQueryCounters()")
    assert "(0 records in buffer)" in console(p, "getQueryCounters()")


def test_tee_action_counters_summed(start_proc, responder, responder_factory):
    """TeeAction's counters (printStats/getStats) are the sum over workers: the same traffic
    prints the same figures with 1 and 2 workers."""
    tee = responder_factory()
    conf = console_prelude() + 'tee = TeeAction("{tee}")\naddAction(AllRule(), tee)\n'
    printed = []
    for n in ("1", "2"):
        p = start_proc("pydist", conf, {"backend": responder.address, "tee": tee.address},
                       extra_args=("--workers", n))
        if n == "2":
            wait_children(p, 2)
        assert set(send_many(p.addr(), "tee", 20)) == {"NOERROR"}
        assert set(send_many(p.addr(), "teenx", 10, "nx.test.")) == {"NXDOMAIN"}
        assert query(p.addr(), "tcp.example.", tcp=True, timeout=3) is not None

        def all_answered() -> str | None:      # the tee's answers are counted as they come
            out = console(p, "tee:printStats()")
            return out if "responses\t30\n" in out else None
        printed.append(poll_until(all_answered, 5))
        p.stop()
    assert printed[0] == printed[1]
    assert "queries\t30\n" in printed[1] and "nxdomains\t10\n" in printed[1]
    assert "tcp-drops\t1\n" in printed[1]


def _cpus_allowed(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("Cpus_allowed_list"))


def test_reuseport_listener_cpus_pin_its_worker(start_proc, responder):
    """addLocal's `cpus` (dnsdist runs the listener's thread on them): the worker serving that
    listener of the group runs on them; the supervisor is not pinned."""
    mine = sorted(os.sched_getaffinity(0))
    assert len(mine) >= 2, "this test needs 2 CPUs"
    c0, c1 = mine[0], mine[1]
    conf = console_prelude() + \
        f'addLocal("127.0.0.1:{{port2}}", {{reusePort=true, cpus={{{c0}}}}})\n' \
        f'addLocal("127.0.0.1:{{port2}}", {{reusePort=true, cpus={{{c1}}}}})\n'
    p = start_proc("pydist", conf, {"backend": responder.address})
    pids = wait_children(p, 2)
    assert sorted(_cpus_allowed(pid) for pid in pids) == sorted([str(c0), str(c1)])
    assert _cpus_allowed(p.proc.pid) == _cpus_allowed(os.getpid())
    assert send_many(p.addr("port2"), "pinned", 10) == ["NOERROR"] * 10
