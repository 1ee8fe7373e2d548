"""One worker process: forked from the supervisor with the evaluated config, it serves its
listening sockets on a loop of its own and answers the supervisor's control messages.

A worker runs no health check (the supervisor pushes the states), no console, web server or
carbon, and no Lua maintenance() (the supervisor runs it and pushes the dynamic blocks). It
exits when the supervisor's end of the channel closes."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

from pydist import uuids
from pydist.registry import Registry
from pydist.rings import Rings
from pydist.workers import handover, reuse_port_groups, snapshots, stats_sum, tickets
from pydist.workers.control import WorkerEndpoint
from pydist.workers.sockets import Assignment


# (context, the worker's engine, payload) -> reply
WorkerHandler = Callable[["WorkerContext", Any, Any], Any]
# message kinds other features add (hot reload's "reload"); registered in the supervisor
# before the workers are forked, so every worker (restarted ones too) answers them
EXTRA_HANDLERS: dict[str, WorkerHandler] = {}


def register_worker_handler(kind: str, handler: WorkerHandler) -> None:
    """Let every worker answer `kind`; the supervisor sends it with broadcast(kind, payload)."""
    EXTRA_HANDLERS[kind] = handler


@dataclass
class WorkerContext:
    """What a worker starts from: all of it inherited by the fork."""
    slot: int
    reg: Registry                           # at the fork (a reload replaces engine.reg)
    execute: Callable[[str], str]           # a console line in the worker's own Lua runtime
    assignment: Assignment
    control: socket.socket
    keep_fds: set[int]                      # descriptors the config opened (KV stores, files)
    hooks: list[Callable[[], None]] = field(default_factory=list)   # maintenance hooks
    # cli's config loader (pydist.reload evaluates the file again with it)
    load: Callable[[Callable[[str], None]], Any] | None = None
    # the packet-cache entries of the worker this one replaces (pydist.workers.handover)
    caches: handover.Entries = field(default_factory=dict)
    workers: int = 1                        # how many workers serve (this one included)


def run_worker(ctx: WorkerContext) -> NoReturn:
    """The child's whole life; never returns into the supervisor's code."""
    code = 1
    try:
        code = _serve(ctx)
    except BaseException:  # noqa: BLE001 -- the child must end here whatever happens
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(code)


def _forget_parent(ctx: WorkerContext) -> None:
    """Drop what the supervisor's loop owned: signal handlers, its wake-up descriptor, every
    descriptor opened since the config (loop, console, checks, other workers' channels)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGINT, signal.SIGHUP):      # ^C, reloads: the supervisor decides
        signal.signal(sig, signal.SIG_IGN)
    keep = set(ctx.keep_fds) | {ctx.control.fileno()}
    keep |= {s.fileno() for pair in ctx.assignment for s in pair if s is not None}
    # each dropped descriptor becomes /dev/null rather than closed: the supervisor's objects
    # still name these numbers, and one finalised later must not close a number reused here
    null = os.open(os.devnull, os.O_RDWR)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep and fd != null:
            try:
                os.dup2(null, fd)
            except OSError:
                pass
    os.close(null)
    asyncio.events._set_running_loop(None)
    reg = ctx.reg
    reg.observers.clear()
    reg.reload_control = None      # the supervisor's: pydist.reload() is refused in a worker
    snapshots.ignore_replayed_saves(reg)
    if reg.web.sock is not None:
        reg.web.sock.close()
        reg.web.sock = None


def _serve(ctx: WorkerContext) -> int:
    import uvloop

    from pydist.engine import WORKER, Engine
    _forget_parent(ctx)
    reg = ctx.reg
    for fe, (udp, tcp) in zip(reg.frontends, ctx.assignment):
        fe.sock_udp, fe.sock_tcp = udp, tcp
    stats_sum.reset(reg)
    pin_to_listener_cpus(reg, ctx.assignment, ctx.workers)
    snapshots.use_worker_files(reg, ctx.slot)
    handover.adopt(reg, ctx.caches)
    ctx.caches = {}
    tickets_from_supervisor(reg)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = Engine(reg, loop, role=WORKER)
    shard_rings(reg, engine.path, ctx.workers)
    engine.health = NoChecks()
    engine.maintenance_hooks.extend(ctx.hooks)
    engine.console_execute = ctx.execute
    engine.config_loader = _worker_loader(ctx.load)
    ctx.control.setblocking(True)
    endpoint = WorkerEndpoint(ctx.control, on_closed=lambda: engine.shutdown(0))
    register_handlers(endpoint, ctx, engine)
    loop.add_reader(ctx.control.fileno(), endpoint.readable)
    loop.run_until_complete(engine.start())
    loop.run_until_complete(engine.stopped.wait())
    return engine.exit_code or 0


def tickets_from_supervisor(reg: Registry) -> None:
    """TLS listeners rotate no ticket key here: the supervisor sends the keys
    (pydist.workers.tickets). Only with a TLS listener: importing the TLS modules after the
    fork costs each worker megabytes of its own (a listener a reload adds is served by newly
    forked workers, which come through here)."""
    if any(fe.tls is not None for fe in reg.frontends):
        from pydist.frontend import tls
        tls.ROTATED_ELSEWHERE = True


def pin_to_listener_cpus(reg: Registry, assignment: Assignment, workers: int) -> set[int]:
    """As dnsdist runs a listener's thread on its `cpus`: the worker that serves a listener
    of a reusePort group alone (the group's i-th, dnsdist's i-th thread) runs on them (the
    union, for a worker serving several groups). Listeners every worker serves pin nothing.
    -> the CPUs set, or an empty set."""
    groups = reuse_port_groups(reg)
    cpus: set[int] = set()
    for fe, pair in zip(reg.frontends, assignment):
        own = pair != (None, None) and fe.options.get("reusePort") \
            and groups.get((fe.kind, fe.host, fe.port)) == workers
        if own:
            cpus.update(fe.options.get("cpus") or ())
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except (OSError, ValueError) as e:  # a CPU this machine lacks: logged, left unpinned
            reg.log(f"Error setting the CPU affinity of worker to {sorted(cpus)}: {e}")
            return set()
        return cpus
    return set()


def shard_rings(reg: Registry, path: Any, workers: int) -> None:
    """This worker's rings hold its share of the configured size, as dnsdist's ring shards
    each hold theirs: the supervisor's rings (the configured size) then take every worker's
    latest entries (a worker reports at most its share), not the last reporting worker's
    alone; and N workers hold one ring's worth of entries between them, not N."""
    rings = Rings(max(1, reg.settings.ring_buffer_size // workers))
    reg.rings = path.rings = rings


def register_handlers(endpoint: WorkerEndpoint, ctx: WorkerContext, engine: Any) -> None:
    """The message kinds a worker answers (pydist.workers.control, rule 2); each reads the
    engine's registry when it runs (a reload replaces it)."""
    def reg() -> Registry:
        return engine.reg if engine is not None else ctx.reg
    endpoint.register("ping", lambda _p: ctx.slot)
    endpoint.register("lua", lambda p: run_console_line(reg(), engine.console_execute, p))
    endpoint.register("report", lambda rings: stats_sum.collect(reg(), bool(rings)))
    endpoint.register("health", lambda states: apply_health(reg(), states))
    endpoint.register("dynblocks", lambda state: apply_dynblocks(reg(), state))
    endpoint.register("acl", lambda masks: apply_acl(reg(), masks))
    endpoint.register("reload", lambda ids: reload_worker(engine, ids))
    endpoint.register("retire", lambda _p: retire_worker(engine))
    endpoint.register(handover.KIND, lambda names: handover.export(reg(), names))
    endpoint.register(snapshots.KIND, lambda p: snapshots.save_in_worker(reg(), p))
    endpoint.register(tickets.KIND, lambda state: tickets.apply(reg(), state))
    for kind, handler in EXTRA_HANDLERS.items():
        endpoint.register(kind, lambda payload, h=handler: h(ctx, engine, payload))


def run_console_line(reg: Registry, execute: Callable[[str], str],
                     line_ids: tuple[str, list[str]]) -> None:
    """A console (or API) command, run in this worker's runtime with the supervisor's ids;
    its output and log lines were already shown by the supervisor."""
    line, ids = line_ids
    log = reg.log
    reg.log = _quiet
    uuids.replay(ids)
    try:
        execute(line)
    finally:
        uuids.replay([])
        reg.log = log


def reload_worker(engine: Any, ids: list[str]) -> bool:
    """The supervisor reloaded: evaluate the same file here, with the same new ids, and swap
    (pydist.reload); its log lines were the supervisor's."""
    from pydist.reload import reload_config
    old = engine.reg
    log = old.log
    old.log = _quiet                    # the new registry takes the log it is handed
    uuids.replay(ids)
    try:
        ok = reload_config(engine).ok
    finally:
        uuids.replay([])
        old.log = log
        engine.reg.log = log
        snapshots.ignore_replayed_saves(engine.reg)
    return ok


def retire_worker(engine: Any) -> bool:
    """Replaced by a worker on a new socket plan (a reload that changed the listeners, or
    one this worker could not apply): stop reading now, the new worker reads the same shared
    sockets; answers to queries in flight still leave; then exit (bounded by the UDP
    timeout, plus one second)."""
    loop = engine.loop
    for fe in engine.reg.frontends:
        server = engine.tcp_servers.pop(id(fe), None)
        if server is not None:
            server.close()              # this process's copy: the listening socket stays open
        if fe.sock_udp is not None:
            loop.remove_reader(fe.sock_udp.fileno())
    deadline = time.monotonic() + engine.reg.settings.udp_timeout + 1
    loop.call_soon(_exit_when_idle, engine, deadline)
    return True


def _exit_when_idle(engine: Any, deadline: float) -> None:
    reg = engine.reg
    busy = any(s.outstanding for s in reg.servers) or any(
        fe.tcp_state.tcp_counters.get("tcpCurrentConnections", 0) for fe in reg.frontends)
    if busy and time.monotonic() < deadline:
        engine.loop.call_later(0.05, _exit_when_idle, engine, deadline)
    else:
        engine.shutdown(0)


def _worker_loader(load: Any) -> Any:
    """cli's loader, minus the Lua maintenance() hook: the supervisor runs maintenance()."""
    if load is None:
        return None

    def worker_load(log: Callable[[str], None]) -> Any:
        loaded = load(log)
        loaded.maintenance_hooks = [loaded.keep_alive.sweep_python_refs]
        return loaded
    return worker_load


class NoChecks:
    """A worker's health checker: none (the supervisor checks and pushes the states); what a
    reload's swap calls on it does nothing."""

    registry: Any = None

    async def initial(self, servers: Any = None) -> None:
        return None

    def tick(self) -> None:
        return None


def _quiet(_line: str) -> None:
    pass


def apply_health(reg: Registry, states: list[tuple[str, str, bool]]) -> None:
    """The supervisor's view of each server (matched by position, checked by name)."""
    for s, (name, availability, up) in zip(reg.servers, states):
        if s.name == name:
            s.availability, s.up_status = availability, up


def apply_dynblocks(reg: Registry, state: tuple[dict, dict, int]) -> None:
    """The supervisor's block tables replace ours; each block's count since the last report
    carries over to the block that replaces it."""
    from pydist.dynblocks import DynBlock
    nets, names, default_action = state
    dyn = reg.dynblocks
    old_nets, old_names = dyn.nets, dyn.names
    dyn.nets = {k: DynBlock(*v, blocks=_count(old_nets.get(k))) for k, v in nets.items()}
    dyn.names = {k: (text, DynBlock(*v, blocks=_count((old_names.get(k) or (None, None))[1])))
                 for k, (text, v) in names.items()}
    dyn.max_labels = max((len(k) for k in dyn.names), default=0)
    dyn.default_action = default_action
    dyn._changed()


def _count(block: Any) -> int:
    return block.blocks if block is not None else 0


def apply_acl(reg: Registry, masks: list[str]) -> None:
    """An ACL replaced through the API (PUT /api/v1/servers/localhost/config/allow-from)."""
    reg.acl.clear()
    for m in masks:
        reg.acl.add(m)
