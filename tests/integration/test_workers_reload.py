"""Hot reload with worker processes (issue 19 item 5): a reload that changes the listeners
replaces the workers one at a time on the new socket plan, and a worker that cannot apply a
reload is restarted on the new config. Clients of a listener the reload kept lose nothing:
the replaced worker stops reading and the new one reads the same shared socket."""
from __future__ import annotations

import os
import re
import signal
import socket
import threading

from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query
from tests.integration.test_workers import (
    _ask_all,
    _bound_clients,
    children,
    console,
    send_many,
    start_dot_workers,
    stats,
    wait_children,
)

CLIENTS = 16


class Stream:
    """A steady UDP stream from CLIENTS source ports (so both workers get some), each round
    waiting up to 2 s for every answer: `lost` counts the queries never answered."""

    def __init__(self, where: tuple[str, int]) -> None:
        self.where = where
        self.clients = _bound_clients(CLIENTS)
        self.sent = 0
        self.lost = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        round_ = 0
        while not self.stop.is_set():
            got = _ask_all(self.where, self.clients, f"stream{round_}-", 2.0)
            self.sent += CLIENTS
            self.lost += CLIENTS - len(got)
            round_ += 1

    def more(self, n: int) -> None:
        mark = self.sent
        poll_until(lambda: self.sent >= mark + n, 20)

    def end(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for s in self.clients:
            s.close()


def _replaced(p: DnsdistProcess, old: list[int]) -> list[int]:
    """Both workers replaced, the old ones gone."""
    def done() -> list[int] | None:
        now = children(p)
        return now if len(now) == 2 and not set(now) & set(old) else None
    return poll_until(done, 15)  # type: ignore[return-value]


def _port_closed(port: int) -> bool:
    """Nobody holds the port any more: a plain bind (no SO_REUSEPORT) of UDP and TCP works."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def test_reload_adding_then_moving_a_listener_with_workers(start_proc, responder):
    conf = console_prelude() + "-- {port2} {port3}\n"
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    old = wait_children(p, 2)
    port2, port3 = int(p.values["port2"]), int(p.values["port3"])
    stream = Stream(p.addr())
    try:
        stream.more(3 * CLIENTS)
        p.conf.write_text(p.conf_text + f'addLocal("127.0.0.1:{port2}")\n')
        out = console(p, "pydist.reload()")
        assert "Reloaded:" in out and "listeners +1 -0 =1" in out, out
        old = _replaced(p, old)
        assert send_many(("127.0.0.1", port2), "added", 20) == ["NOERROR"] * 20
        assert query(("127.0.0.1", port2), "added-tcp.example.", tcp=True) is not None
        stream.more(3 * CLIENTS)
        # the listener moves from port2 to port3: port2 closes, port3 answers
        p.conf.write_text(p.conf_text + f'addLocal("127.0.0.1:{port3}")\n')
        out = console(p, "pydist.reload()")
        assert "Reloaded:" in out and "listeners +1 -1 =1" in out, out
        _replaced(p, old)
        poll_until(lambda: _port_closed(port2), 15)
        assert send_many(("127.0.0.1", port3), "moved", 20) == ["NOERROR"] * 20
        stream.more(3 * CLIENTS)
    finally:
        stream.end()
    assert stream.sent >= 9 * CLIENTS
    assert stream.lost == 0, f"{stream.lost} of {stream.sent} queries lost"
    assert stats(p)["worker-restarts"] == "0"     # replaced by the reload, not restarted


def test_reordered_listeners_applied_with_workers(start_proc, responder):
    conf = console_prelude() + 'addLocal("127.0.0.1:{port2}")\n'
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    old = wait_children(p, 2)
    port2 = int(p.values["port2"])
    text = p.conf_text.replace('setLocal("127.0.0.1:{}")'.format(p.values["port"]),
                               'setLocal("127.0.0.1:{}")'.format(port2))
    text = text.replace('addLocal("127.0.0.1:{}")'.format(port2),
                        'addLocal("127.0.0.1:{}")'.format(p.values["port"]))
    p.conf.write_text(text)
    assert "Reloaded:" in console(p, "pydist.reload()")
    _replaced(p, old)
    for where in (p.addr(), ("127.0.0.1", port2)):
        assert set(send_many(where, "reordered", 10)) == {"NOERROR"}
    binds = console(p, "showBinds()")
    assert binds.index(f":{port2}") < binds.index(f":{p.values['port']}"), binds


def test_worker_failing_a_reload_restarted_on_the_new_config(start_proc, responder, tmp_path):
    """While `armed` exists the file evaluates once (it leaves `taken`) and errors after: a
    SIGHUP reload evaluates it in the supervisor first (passes), then in each worker (fails)."""
    armed, taken = tmp_path / "armed", tmp_path / "taken"
    conf = console_prelude() + f"""
local function exists(path) local f = io.open(path) if f then f:close() end return f ~= nil end
if exists("{armed}") then
  if exists("{taken}") then error("this process cannot evaluate the file") end
  io.open("{taken}", "w"):close()
end
"""
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    old = wait_children(p, 2)
    assert set(send_many(p.addr(), "before", 10)) == {"NOERROR"}
    p.conf.write_text(p.conf_text + 'addAction(AllRule(), RCodeAction(DNSRCode.REFUSED))\n')
    armed.touch()
    assert p.proc is not None
    os.kill(p.proc.pid, signal.SIGHUP)
    p.wait_for(r"Configuration reloaded in")
    armed.unlink()                   # the console client evaluates the file too
    _replaced(p, old)
    p.wait_for(r"Worker \d could not apply the reload: restarted on the new configuration",
               count=2)
    assert send_many(p.addr(), "after", 20) == ["REFUSED"] * 20
    assert stats(p)["worker-restarts"] == "2"
    assert re.search(r"\s20 All\s+set rcode 5", console(p, "showRules()"))


# --- cache snapshots: one file per worker

def _asked(responder, prefix: str) -> int:
    return sum(1 for name, _, _ in list(responder.queries) if name.startswith(prefix))


def test_snapshots_of_every_worker_survive_a_restart(start_proc, responder, tmp_path):
    """Each client (a fixed source port) reaches the same worker after a restart with the
    same number of workers; what either worker cached is a hit there again."""
    snap = tmp_path / "cache.snap"
    conf = console_prelude(cache=1000) + f'pydist.cacheOptions(pc, {{snapshot="{snap}"}})\n'
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    clients = _bound_clients(CLIENTS)
    try:
        assert _ask_all(p.addr(), clients, "snap", 5) == set(range(CLIENTS))
        assert _asked(responder, "snap") == CLIENTS
        p.stop()

        def saved_lines() -> list[int] | None:     # the output reader may lag the exit
            found = re.findall(r"Saved (\d+) entries to the cache snapshot", p.output)
            return [int(n) for n in found] if len(found) == 2 else None
        saved: list[int] = poll_until(saved_lines, 5)  # type: ignore[assignment]
        assert sorted(saved) != [0, CLIENTS] and sum(saved) == CLIENTS, saved  # both cached
        assert (tmp_path / "cache.snap.w0").exists() and (tmp_path / "cache.snap.w1").exists()
        again = start_proc("pydist", conf, dict(p.values), extra_args=("--workers", "2"))
        wait_children(again, 2)
        assert _ask_all(again.addr(), clients, "snap", 5) == set(range(CLIENTS))
    finally:
        for s in clients:
            s.close()
    assert _asked(responder, "snap") == CLIENTS        # every answer came from a snapshot
    st = stats(again)
    assert st["cache-hits"] == str(CLIENTS), st


def test_save_to_a_named_file_merges_every_worker(start_proc, responder, tmp_path):
    """pydist.saveCache(pc, "file") on the console with workers writes one file holding
    every worker's entries (each worker used to write its own over the others', and the
    supervisor answered with its own, empty, count); one process and two workers started on
    that file answer every name from it. pydist.saveCache(pc) writes each worker's file."""
    merged = tmp_path / "merged.snap"
    conf = console_prelude(cache=1000) + "pydist.cacheOptions(pc, {staleWindow=0})\n"
    p = start_proc("pydist", conf, {"backend": responder.address},
                   extra_args=("--workers", "2"))
    wait_children(p, 2)
    clients = _bound_clients(CLIENTS)
    try:
        assert _ask_all(p.addr(), clients, "merged", 5) == set(range(CLIENTS))
    finally:
        for s in clients:
            s.close()
    assert console(p, f'pydist.saveCache(pc, "{merged}")') == \
        f"Saved {CLIENTS} entries to '{merged}'\n"
    p.stop()
    conf = console_prelude(cache=1000) + f'pydist.cacheOptions(pc, {{snapshot="{merged}"}})\n'
    for n in ("1", "2"):
        again = start_proc("pydist", conf, dict(p.values), extra_args=("--workers", n))
        if n == "2":
            wait_children(again, 2)
        for i in range(CLIENTS):        # fresh source ports: both workers are asked
            r = query(again.addr(), f"merged{i}.example.", timeout=3)
            assert r is not None and r.answer, i
        if n == "2":
            out = console(again, "pydist.saveCache(pc)")
            assert sorted(out.splitlines()) == [f"Saved {CLIENTS} entries to '{merged}.w{i}'"
                                                for i in (0, 1)], out
        again.stop()
    assert _asked(responder, "merged") == CLIENTS       # every later answer from the file


# --- DoT session tickets: one key ring for every worker

def test_dot_ticket_resumes_on_every_worker(start_proc, responder, tmp_path):
    """New connections come from new source ports, so the kernel spreads them over both
    workers: every one resumes the session of the first, also after a rotation asked on the
    console (which each worker used to draw for itself)."""
    from tests.integration.test_dot_tickets import _connect
    p, ca_path = start_dot_workers(start_proc, responder, tmp_path)
    for round_ in range(2):
        session, reused = _connect(p, ca_path)
        assert session is not None and not reused
        resumed = [_connect(p, ca_path, session)[1] for _ in range(20)]
        assert all(resumed), f"round {round_}: {resumed.count(False)} of 20 not resumed"
        console(p, "getTLSContext(0):rotateTicketsKey()")


def test_dot_ticket_resumes_on_every_worker_across_timed_rotations(start_proc, responder,
                                                                   tmp_path):
    """ticketsKeysRotationDelay=1: the supervisor rotates every second and sends the ring;
    the workers used to rotate each a key of its own."""
    from tests.integration.test_dot_tickets import _connect
    p, ca_path = start_dot_workers(start_proc, responder, tmp_path,
                                   "ticketsKeysRotationDelay=1")
    poll_until(lambda: int(stats(p)["uptime"]) >= 3, 10)     # rotations have happened
    session, reused = _connect(p, ca_path)
    assert session is not None and not reused
    resumed = [_connect(p, ca_path, session)[1] for _ in range(20)]
    assert all(resumed), f"{resumed.count(False)} of 20 not resumed"


def test_reload_replacing_workers_keeps_their_caches(start_proc, responder):
    """A reload adding a listener replaces both workers: each new one holds the entries of
    the one it replaced, and the clients (same sockets, same worker slot) still hit."""
    p = start_proc("pydist", console_prelude(cache=1000) + "-- {port2}\n",
                   {"backend": responder.address}, extra_args=("--workers", "2"))
    old = wait_children(p, 2)
    clients = _bound_clients(CLIENTS)
    try:
        assert _ask_all(p.addr(), clients, "warm", 5) == set(range(CLIENTS))
        p.conf.write_text(p.conf_text + 'addLocal("127.0.0.1:{}")\n'.format(p.values["port2"]))
        out = console(p, "pydist.reload()")
        assert "caches kept 1 resized 0 new 0, listeners +1 -0 =1" in out, out
        _replaced(p, old)
        assert _ask_all(p.addr(), clients, "warm", 5) == set(range(CLIENTS))
    finally:
        for s in clients:
            s.close()
    assert _asked(responder, "warm") == CLIENTS      # the second round: every one a hit
