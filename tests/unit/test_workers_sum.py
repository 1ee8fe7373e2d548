"""pydist.workers without processes: the control channel's framing and dispatch, and how a
worker's report is taken (deltas zeroed) and summed into the supervisor's objects."""
from __future__ import annotations

import socket

from pydist.backend.server import DownstreamState
from pydist.cache import PacketCache
from pydist.registry import FrontendDecl, Registry
from pydist.rings import Rings
from pydist.stats import Stats
from pydist.workers import stats_sum, worker_count
from pydist.workers.control import Decoder, SupervisorEnd, WorkerEndpoint, encode


def _registry() -> Registry:
    reg = Registry()
    reg.servers.append(DownstreamState("127.0.0.1", 53))
    reg.frontends.append(FrontendDecl("127.0.0.1", 53))
    reg.pools[""].cache = PacketCache(100)
    reg.rings = Rings(10)
    return reg


def test_decoder_reassembles_split_messages():
    wire = encode(("report", None)) + encode(("lua", ("showServers()", ["id"])))
    d = Decoder()
    got = []
    for i in range(len(wire)):
        got += d.feed(wire[i:i + 1])
    assert got == [("report", None), ("lua", ("showServers()", ["id"]))]


def test_endpoint_dispatches_and_survives_a_failing_handler():
    a, b = socket.socketpair()
    worker = WorkerEndpoint(b, on_closed=lambda: None)
    worker.register("double", lambda x: 2 * x)
    worker.register("boom", lambda x: 1 / 0)
    sup = SupervisorEnd(a)
    for kind, payload in (("double", 21), ("boom", 0), ("nothing", 0)):
        sup.send(kind, payload)
        worker.readable()
    assert sup.reply(1) == 42
    for _ in range(2):
        try:
            sup.reply(1)
        except RuntimeError as e:
            assert "ZeroDivisionError" in str(e) or "unknown control message" in str(e)
        else:
            raise AssertionError("an error reply was expected")
    a.close()
    b.close()


def test_report_takes_deltas_and_totals_sum_them():
    worker, sup = _registry(), _registry()
    totals = stats_sum.Totals(sup)
    for slot in (0, 1):
        worker.stats.queries += 3
        worker.servers[0].queries += 2
        worker.servers[0].outstanding = 4
        worker.frontends[0].udp_state.queries += 3
        worker.pools[""].cache.hits += 1
        worker.rings.queries.append((1.0, ("127.0.0.1", 1), b"q", 0))
        report = stats_sum.collect(worker)
        assert worker.stats.queries == 0 and worker.servers[0].queries == 0
        assert not worker.rings.queries
        totals.add(slot, report)
    totals.settle()
    assert sup.stats.queries == 6
    assert sup.servers[0].queries == 4
    assert sup.servers[0].outstanding == 8          # a gauge: each worker's latest, summed
    assert sup.frontends[0].udp_state.queries == 6
    assert sup.pools[""].cache.hits == 2
    assert len(sup.rings.queries) == 2
    # a dead worker's counters stay in the totals; its gauges stop counting
    totals.forget(1)
    totals.settle()
    assert sup.stats.queries == 6 and sup.servers[0].outstanding == 4


def test_summed_process_figures_and_reset():
    sup = _registry()
    totals = stats_sum.Totals(sup)
    report = stats_sum.collect(_registry())
    report["process"]["fd-usage"] = 1000
    report["caches"] = [([0] * len(stats_sum.CACHE_COUNTERS), 7)]
    totals.add(0, report)
    totals.settle()
    assert sup.stats.value("fd-usage") >= 1000
    assert sup.pools[""].cache.entries == 7
    stats_sum.reset(sup)          # what a worker forked from this supervisor does first
    assert type(sup.stats) is Stats
    assert type(sup.pools[""].cache) is PacketCache and sup.pools[""].cache.entries == 0


def test_worker_count_sources():
    reg = Registry()
    assert worker_count(reg, None) == 1
    for _ in range(3):
        reg.frontends.append(FrontendDecl("127.0.0.1", 53, options={"reusePort": True}))
    reg.frontends.append(FrontendDecl("127.0.0.1", 54, options={"reusePort": True}))
    assert worker_count(reg, None) == 3
    reg.settings.workers = 2
    assert worker_count(reg, None) == 2
    assert worker_count(reg, 4) == 4


def test_large_reply_through_non_blocking_sockets():
    """Loops make the channel non-blocking; a reply larger than the socket buffers (a ring
    shipment) still arrives whole."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    big = b"x" * (8 << 20)
    worker = WorkerEndpoint(b, on_closed=lambda: None)
    worker.register("big", lambda _p: big)
    sup = SupervisorEnd(a)
    sup.send("big")
    import threading
    t = threading.Thread(target=worker.readable)
    t.start()
    assert sup.reply(10) == big
    t.join()
    a.close()
    b.close()


def test_extra_handlers_reach_the_worker_endpoint():
    """Another feature (hot reload) registers a kind; a worker's endpoint answers it."""
    from pydist.workers import worker as W
    W.register_worker_handler("reload-test", lambda ctx, engine, payload: (ctx.slot, payload))
    try:
        a, b = socket.socketpair()
        endpoint = WorkerEndpoint(b, on_closed=lambda: None)
        ctx = W.WorkerContext(3, Registry(), lambda line: "", [], b, set())
        W.register_handlers(endpoint, ctx, engine=None)
        sup = SupervisorEnd(a)
        sup.send("reload-test", "new.conf")
        endpoint.readable()
        assert sup.reply(1) == (3, "new.conf")
        a.close()
        b.close()
    finally:
        W.EXTRA_HANDLERS.pop("reload-test")


def test_action_counters_summed_through_continue_action():
    """TeeAction's counters (ints and its per-rcode list) travel as deltas, also when the
    action is wrapped in ContinueAction; a list counter is zeroed in place."""
    from pydist.rules import selectors
    from pydist.rules.actions import ContinueAction
    from pydist.rules.chain import Rule
    from pydist.rules.more_actions import TeeAction
    worker, sup = _registry(), _registry()
    for reg in (worker, sup):
        reg.rules["query"].add(Rule(selectors.AllRule(), TeeAction("127.0.0.1", 53)))
        reg.rules["query"].add(Rule(selectors.AllRule(),
                                    ContinueAction(TeeAction("127.0.0.1", 54))))
    totals = stats_sum.Totals(sup)
    tee, wrapped = (r.action for r in worker.rules["query"].rules)
    rcodes = tee.rcodes
    for slot in (0, 1):
        tee.queries += 2
        tee.rcodes[3] += 1
        wrapped.action.responses += 5
        totals.add(slot, stats_sum.collect(worker))
    assert tee.queries == 0 and tee.rcodes is rcodes and rcodes[3] == 0
    s_tee, s_wrapped = (r.action for r in sup.rules["query"].rules)
    assert s_tee.stats()["queries"] == 4 and s_tee.stats()["nxdomains"] == 2
    assert s_wrapped.action.stats()["responses"] == 10


def test_worker_rings_hold_their_share_and_the_sum_keeps_every_worker():
    """Each of N workers keeps ring_buffer_size // N entries (dnsdist's ring shards): the
    supervisor's rings, of the configured size, then hold every worker's latest entries; with
    full-size worker rings the last worker to report pushed the others' out."""
    from types import SimpleNamespace
    from pydist.workers.worker import shard_rings
    sup = _registry()
    sup.settings.ring_buffer_size = sup.rings.queries.maxlen
    totals = stats_sum.Totals(sup)
    for slot in (0, 1):
        worker = _registry()
        worker.settings.ring_buffer_size = 10
        path = SimpleNamespace(rings=None)
        shard_rings(worker, path, 2)
        assert path.rings is worker.rings and worker.rings.queries.maxlen == 5
        for i in range(8):
            worker.rings.queries.append((0.0, ("127.0.0.1", slot), b"q%d" % i, 0))
        totals.add(slot, stats_sum.collect(worker))
    ports = [entry[1][1] for entry in sup.rings.queries]
    assert sorted(ports) == [0] * 5 + [1] * 5


def test_worker_without_tls_listener_imports_no_tls_module():
    """A worker imports the TLS frontend modules only for a TLS listener (after the fork they
    cost each worker megabytes of its own); checked in a fresh interpreter."""
    import subprocess
    import sys
    code = ("import sys\nfrom pydist.registry import FrontendDecl, Registry\n"
            "from pydist.workers.worker import tickets_from_supervisor\n"
            "reg = Registry()\nreg.frontends.append(FrontendDecl('127.0.0.1', 53))\n"
            "tickets_from_supervisor(reg)\n"
            "assert 'pydist.frontend.tls' not in sys.modules, 'imported without TLS'\n"
            "reg.frontends[0].tls = object()\ntickets_from_supervisor(reg)\n"
            "from pydist.frontend import tls\nassert tls.ROTATED_ELSEWHERE\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
