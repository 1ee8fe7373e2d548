"""The supervisor: forks N workers after the config is evaluated and the sockets are bound,
restarts any that dies (a log line and the `worker-restarts` counter), and keeps what must be
single. Its engine (role SUPERVISOR) runs the console, web server, carbon, health checks and
maintenance(); this module adds what ties it to the workers:

- every console line (and every API change) runs here for its output, then in every worker's
  own Lua runtime, with the same new UUIDs (pydist.uuids), before the console answers;
- before any output (a console line, a web request, the one-second tick that feeds carbon,
  rates and the dynamic-block rules) the workers' reports are summed into this process's
  objects (pydist.workers.stats_sum);
- after each tick and console line, changed health states and dynamic blocks are pushed.

`broadcast(kind, payload)` reaches every worker with any message a handler is registered for
(pydist.workers.worker.register_handlers): other features (hot reload) add their own kinds.
"""
from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from pydist import uuids
from pydist.registry import Registry
from pydist.workers import handover, snapshots, tickets
from pydist.workers.control import ChannelClosed, SupervisorEnd
from pydist.workers.sockets import Assignment, all_fds, all_sockets, columns, plan_sockets
from pydist.workers.stats_sum import Totals
from pydist.workers.worker import WorkerContext, run_worker

if TYPE_CHECKING:
    from pydist.engine import Engine

REPLY_TIMEOUT = 5.0     # a worker silent this long is stuck: it is killed and restarted
LUA_TIMEOUT = 60.0      # ... or this long for a console line (it may dump or load a cache)
RESTART_PAUSE = 1.0     # a worker that dies within this of its start waits this long


@dataclass
class Slot:
    """One worker position: its current process and channel."""
    index: int
    pid: int = 0
    end: SupervisorEnd | None = None
    started: float = 0.0


class Supervisor:
    def __init__(self, reg: Registry, engine: "Engine", execute: Callable[[str], str],
                 plan: list[Assignment], keep_fds: set[int],
                 worker_hooks: list[Callable[[], None]],
                 rings_each_tick: Callable[[], bool] = lambda: True) -> None:
        self.reg = reg
        self.engine = engine
        self.execute = execute            # the supervisor's own console executor
        self.plan = plan
        # a worker keeps the config's descriptors (KV stores, files) and its own sockets only
        self.keep_fds = keep_fds - all_fds(plan)
        self.worker_hooks = worker_hooks
        self.load = engine.config_loader   # cli's: the config file evaluated again (reload)
        # the one-second reports carry ring entries only when maintenance() may read them
        # (the dynamic-block rules); a console line or a web request always takes them
        self.rings_each_tick = rings_each_tick
        self.slots = [Slot(i) for i in range(len(plan))]
        self.retiring: list[Slot] = []     # replaced by a reload: draining, then exiting
        self.replace_after_reload: list[int] = []    # slot indexes
        self.replan_after_reload = False
        self.restarts = 0
        self.stopping = False
        self.totals = Totals(reg)
        self.last_health: list[tuple[str, str, bool]] = self._health_states()
        self.blocks_dirty = False
        self.tickets = tickets.TicketSync(reg)
        self.rotating: set[int] = set()     # the TLS contexts whose keys rotate here
        reg.stats.extra["worker-restarts"] = lambda: self.restarts
        reg.stats.extra_help["worker-restarts"] = "Number of worker processes restarted"

    # --- life cycle
    def start(self) -> None:
        """Fork every worker, then watch them from the supervisor's loop."""
        for slot in self.slots:
            self._spawn(slot)
        self.engine.workers = self         # how other features reach broadcast()
        self.reg.cache_saver = snapshots.SupervisorSaver(self)
        self.engine.console_execute = self.console
        self.engine.config_loader = self._load_for_reload
        self.engine.shutdown_hooks.append(self.stop)
        self.engine.maintenance_hooks.insert(0, self._reap)
        self.engine.maintenance_hooks.insert(1, self._tick_gather)
        self.engine.maintenance_hooks.append(self.push_state)
        self.engine.health.after_apply = self._push_health
        self.engine.on_web_server = self._wrap_web
        if self.engine.web_server is not None:
            self._wrap_web(self.engine.web_server)
        self._watch_blocks()
        tickets.start_rotations(self.reg, self.engine.loop, self.rotating)

    def _watch_blocks(self) -> None:
        dyn = self.reg.dynblocks
        previous = dyn.on_change

        def blocks_changed() -> None:
            self.blocks_dirty = True
            if previous is not None:
                previous()
        dyn.on_change = blocks_changed

    def _spawn(self, slot: Slot, caches: handover.Entries | None = None) -> None:
        if self.stopping:
            return
        parent, child = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        # in the worker, what exists now (the config, the Lua runtime, the modules) stays out
        # of the collector's reach: its passes would write every inherited object's header
        # and so copy the pages shared with the supervisor (which unfreezes its own at once)
        gc.freeze()
        try:
            pid = os.fork()
        except OSError as e:        # out of processes or memory: try again later
            gc.unfreeze()
            parent.close()
            child.close()
            self.reg.log(f"Unable to start worker {slot.index}: {e.strerror}")
            self.engine.loop.call_later(RESTART_PAUSE, self._spawn, slot)
            return
        if pid == 0:
            parent.close()
            run_worker(WorkerContext(slot.index, self.reg, self.execute, self.plan[slot.index],
                                     child, self.keep_fds, list(self.worker_hooks), self.load,
                                     caches or {}, len(self.slots)))
        gc.unfreeze()
        child.close()
        parent.setblocking(True)
        slot.pid, slot.end, slot.started = pid, SupervisorEnd(parent), time.monotonic()
        # between requests the channel is silent: readable then means the worker is gone
        # (uvloop keeps SIGCHLD for itself, so the end of the channel is the signal)
        self.engine.loop.add_reader(parent.fileno(), self._channel_readable, slot)

    def _channel_readable(self, slot: Slot) -> None:
        end = slot.end
        if end is None:
            return
        try:
            data = end.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_end(slot)
            if slot in self.retiring:
                self._reap_retired(block=True)
            else:
                self._reap(block_for=slot)

    def _close_end(self, slot: Slot) -> None:
        if slot.end is not None:
            self.engine.loop.remove_reader(slot.end.sock.fileno())
            slot.end.close()
            slot.end = None

    def _reap(self, block_for: Slot | None = None) -> None:
        """Every worker that ended is logged, counted and started again (each tick, and at
        once when its channel closes: then its exit is waited for)."""
        self._reap_retired(block=False)
        for slot in self.slots:
            if not slot.pid:
                continue
            try:
                pid, status = os.waitpid(slot.pid, 0 if slot is block_for else os.WNOHANG)
            except ChildProcessError:
                pid, status = slot.pid, 0
            if pid == 0:
                continue
            self._ended(slot, status)

    def _ended(self, slot: Slot, status: int) -> None:
        why = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exited with status {os.WEXITSTATUS(status)}")
        pid, slot.pid = slot.pid, 0
        self._close_end(slot)
        self.totals.forget(slot.index)
        if self.stopping:
            return
        self.restarts += 1
        self.reg.log(f"Worker {slot.index} (pid {pid}) {why}, restarting it")
        quick = time.monotonic() - slot.started < RESTART_PAUSE
        if quick:
            self.engine.loop.call_later(RESTART_PAUSE, self._spawn, slot)
        else:
            self._spawn(slot)

    def _reap_retired(self, block: bool) -> None:
        """Replaced workers that finished their in-flight answers and exited: no restart."""
        for slot in list(self.retiring):
            try:
                pid, _ = os.waitpid(slot.pid, 0 if block and slot.end is None else os.WNOHANG)
            except ChildProcessError:
                pid = slot.pid
            if pid:
                self._close_end(slot)
                self.retiring.remove(slot)

    def stop(self) -> None:
        """The supervisor ends: so do the workers (their channel closes; SIGTERM too)."""
        self.stopping = True
        self.slots += self.retiring
        self.retiring = []
        for slot in self.slots:
            self._close_end(slot)
            if slot.pid:
                try:
                    os.kill(slot.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 2.0
        for slot in self.slots:
            while slot.pid:
                try:
                    pid, _ = os.waitpid(slot.pid, os.WNOHANG)
                except ChildProcessError:
                    pid = slot.pid
                if pid:
                    slot.pid = 0
                elif time.monotonic() > deadline:
                    os.kill(slot.pid, signal.SIGKILL)
                else:
                    time.sleep(0.01)   # bounded wait for a child to exit, not a synchronisation

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self.slots]

    # --- messages
    def broadcast(self, kind: str, payload: Any = None,
                  timeout: float = REPLY_TIMEOUT) -> list[Any]:
        """Send one message to every live worker and wait for each reply (None for a worker
        that died meanwhile or failed: its error is logged). Any kind a worker handles
        (pydist.workers.worker.register_worker_handler) can be sent."""
        live = [s for s in self.slots if s.end is not None]
        for slot in live:
            try:
                slot.end.send(kind, payload)  # type: ignore[union-attr]
            except ChannelClosed:
                pass
        return [self._reply(slot, timeout) for slot in live]

    def _reply(self, slot: Slot, timeout: float = REPLY_TIMEOUT) -> Any:
        if slot.end is None:
            return None
        try:
            return slot.end.reply(timeout)
        except ChannelClosed as e:
            if str(e) == "no reply" and slot.pid:   # stuck: the restart path takes over
                os.kill(slot.pid, signal.SIGKILL)
            self._close_end(slot)
        except RuntimeError as e:
            self.reg.log(f"Worker {slot.index}: {e}")
        return None

    def _ask(self, slot: Slot, kind: str, payload: Any) -> Any:
        """One worker's reply to one message (None when it is gone or failed)."""
        if slot.end is None:
            return None
        try:
            slot.end.send(kind, payload)
        except ChannelClosed:
            return None
        return self._reply(slot, LUA_TIMEOUT)

    def _tick_gather(self) -> None:
        self.gather(rings=self.rings_each_tick())

    def gather(self, rings: bool = True) -> None:
        """Sum the workers' reports into this process's objects (before any output)."""
        live = [s for s in self.slots if s.end is not None]
        for slot in live:
            try:
                slot.end.send("report", rings)  # type: ignore[union-attr]
            except ChannelClosed:
                pass
        for slot in live:
            report = self._reply(slot)
            if report is not None:
                self.totals.add(slot.index, report)
        self.totals.settle()

    def _push_health(self) -> None:
        """Changed health states, to every worker (after each check, as they change)."""
        states = self._health_states()
        if states != self.last_health:
            self.last_health = states
            self.broadcast("health", states)

    def push_state(self) -> None:
        """Changed health states, dynamic blocks and TLS ticket keys, to every worker."""
        self._push_health()
        keys = self.tickets.changed(self.reg)
        if keys is not None:
            self.broadcast(tickets.KIND, keys)
        if self.blocks_dirty:
            self.blocks_dirty = False
            dyn = self.reg.dynblocks
            nets = {k: (b.reason, b.until, b.action, b.warning) for k, b in dyn.nets.items()}
            names = {k: (text, (b.reason, b.until, b.action, b.warning))
                     for k, (text, b) in dyn.names.items()}
            self.broadcast("dynblocks", (nets, names, dyn.default_action))

    def _health_states(self) -> list[tuple[str, str, bool]]:
        """Each server's forced state (setUp/setDown/setAuto, from maintenance() too) and
        its checked one."""
        return [(s.name, s.availability, s.up_status) for s in self.reg.servers]

    # --- the console and the web server
    def console(self, line: str) -> str:
        """A console line: counters gathered, run here for the output, then in every worker."""
        self.gather()
        ids = uuids.record()
        try:
            text = self.execute(line)
        finally:
            uuids.stop_recording()
        if self.engine.exit_code is None:      # shutdown() ends the workers, not run there
            self.broadcast("lua", (line, list(ids)), LUA_TIMEOUT)
            self.push_state()
        return text

    def _wrap_web(self, server: Any) -> None:
        """Web requests read summed figures; an ACL changed through the API reaches the
        workers."""
        router = server.router
        handle = router.handle
        if getattr(handle, "supervised", False):
            return

        def supervised(req: Any) -> Any:
            self.gather()
            before = self.reg.acl.to_strings()
            response = handle(req)
            after = self.reg.acl.to_strings()
            if after != before:
                self.broadcast("acl", after)
            return response
        supervised.supervised = True  # type: ignore[attr-defined]
        router.handle = supervised

    # --- hot reload (pydist/reload): here first, then in every worker
    def _load_for_reload(self, log: Callable[[str], None]) -> Any:
        """The reload's loader in the supervisor: the file evaluated (its new UUIDs recorded);
        then every worker reloads the same file with the same ids, before this process swaps
        and logs the reload (so the line means every process has it). A reload that changes
        the listeners (or their order) is applied by replacing the workers instead, once this
        process has swapped and bound the new listeners (_replace_workers); so is a worker
        that could not reload."""
        from pydist.reload.diff import plan as reload_plan
        from pydist.reload.model import ReloadError
        if self.load is None:
            raise ReloadError(["no configuration file to reload from"])
        ids = uuids.record()
        try:
            loaded = self.load(log)
        finally:
            uuids.stop_recording()
        change = reload_plan(self.engine.reg, loaded.registry)
        kept = {id(new): old for old, new in change.kept_listeners}
        order = [kept.get(id(fe)) for fe in loaded.registry.frontends]
        self.replan_after_reload = bool(change.added_listeners or change.removed_listeners
                                        or order != self.reg.frontends)
        if self.replan_after_reload:
            self.gather()           # the workers' last counters, in the running listeners' order
            self.replace_after_reload = [s.index for s in self.slots]
        else:
            live = [s for s in self.slots if s.end is not None]
            replies = self.broadcast("reload", list(ids), LUA_TIMEOUT)
            self.replace_after_reload = [s.index for s, ok in zip(live, replies) if not ok]
        self.engine.loop.call_soon(self._reloaded, loaded)
        return loaded

    def _reloaded(self, loaded: Any) -> None:
        """After the supervisor's swap (run on the loop once the reload returned): follow the
        new registry, then replace the workers that must be."""
        engine = self.engine
        if engine.reg is not loaded.registry:        # the reload failed after the loader
            return
        old_reg = self.reg
        self.reg = engine.reg
        self.reg.cache_saver = snapshots.SupervisorSaver(self)
        self.totals = Totals(self.reg)
        self.execute = loaded.console_execute
        engine.console_execute = self.console
        lua = loaded.keep_alive
        self.worker_hooks = [lua.sweep_python_refs]
        self.rings_each_tick = lambda: lua.globals["maintenance"] is not None
        hooks = engine.maintenance_hooks       # the reload put the config's hooks first
        for hook in (self._tick_gather, self._reap):
            if hook in hooks:
                hooks.remove(hook)
            hooks.insert(0, hook)
        self._watch_blocks()
        self.last_health = []
        self.blocks_dirty = True
        self.tickets = tickets.TicketSync(self.reg)
        tickets.start_rotations(self.reg, engine.loop, self.rotating)
        if self.replan_after_reload:
            self._replan(old_reg.frontends)
        failed = [] if self.replan_after_reload else self.replace_after_reload
        self._replace_workers(self.replace_after_reload, handover.kept_pools(old_reg, self.reg))
        for i in failed:
            self.restarts += 1
            self.reg.log(f"Worker {i} could not apply the reload: restarted on the new "
                         "configuration")
        self.replace_after_reload = []
        self.push_state()

    def _replan(self, old_frontends: list[Any]) -> None:
        """The new listeners' sockets, one SO_REUSEPORT socket per worker as at start-up (the
        kept listeners keep theirs); the supervisor's copies of the removed listeners' close
        now (the replaced workers hold theirs until their in-flight answers left)."""
        from pydist.engine import bind_frontend
        reg = self.reg

        def bind(fe: Any) -> None:
            try:
                bind_frontend(fe, reg.log, True)
            except Exception as e:  # noqa: BLE001 -- the other workers serve it
                reg.log(f"Error binding the new listener {fe.address()}: {e}")
        old_plan = self.plan
        self.plan = plan_sockets(reg, len(self.slots), bind, columns(old_frontends, old_plan))
        self.keep_fds -= all_fds(self.plan)
        still = {id(s) for s in all_sockets(self.plan)}
        for sock in all_sockets(old_plan):
            if id(sock) not in still:
                sock.close()

    def _replace_workers(self, indexes: list[int], pools: list[str]) -> None:
        """One at a time: a new worker forked on the current config and socket plan, holding
        the old one's entries of the `pools` caches; then the one it replaces told to stop
        reading (the listeners they share lose nothing: what arrives meanwhile waits in the
        socket), finish its in-flight answers and exit."""
        for i in indexes:
            old = self.slots[i]
            new = Slot(i)
            entries = self._ask(old, handover.KIND, pools) if pools else None
            self.slots[i] = new
            if old.pid:
                self.retiring.append(old)
            self._spawn(new, entries or {})
            self._ask(old, "retire", None)
