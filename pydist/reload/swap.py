"""The swap: the new registry becomes the one the engine observes, in one synchronous step
on the loop (no query is read meanwhile, so none sees half of each config). Sockets follow:
unchanged listeners are untouched, added ones start, removed ones stop reading at once and
close once their in-flight answers had time to leave."""
from __future__ import annotations

from typing import Any

from pydist.engine import SUPERVISOR, Engine, bind_frontend
from pydist.registry import SERVE, FrontendDecl, Registry
from pydist.reload import carry
from pydist.reload.check import address_of, held_addresses
from pydist.reload.diff import ReloadPlan
from pydist.reload.model import LoadedConfig

LOGGER_GRACE = 2.0       # seconds an old remote logger gets to send what it queued


def apply(engine: Engine, loaded: LoadedConfig, plan: ReloadPlan) -> None:
    old, new = engine.reg, loaded.registry
    carry.globals_(old, new)
    carry.servers(plan, new)
    carry.caches(plan, new)
    carry.rules(plan)
    carry.listeners(plan, new)
    _observe(engine, old, new, loaded)
    _swap_servers(engine, plan)
    _swap_listeners(engine, plan)
    _swap_side_services(engine, old, new)
    engine.path.refresh()


def _observe(engine: Engine, old: Registry, new: Registry, loaded: LoadedConfig) -> None:
    """Every runtime reference to the registry now points at the new one."""
    new.mode = SERVE
    new.config_done = True
    new.observers = [engine]
    new.reload_control = old.reload_control
    old.observers = []
    old.reload_control = None
    engine.reg = new
    path = engine.path
    path.reg = new
    path.settings = new.settings
    path.default_pool = new.get_pool("")
    engine.health.registry = new
    engine.console_execute = loaded.console_execute
    hooks = engine.maintenance_hooks
    hooks[:] = [h for h in hooks if h not in engine.config_hooks]
    engine.config_hooks = [new.dynblocks.maintenance, *loaded.maintenance_hooks]
    hooks[0:0] = engine.config_hooks


def _swap_servers(engine: Engine, plan: ReloadPlan) -> None:
    for old_s in plan.removed_servers:
        engine.server_removed(old_s)
        engine.reg.log(f"Removed downstream server {old_s.address_str}")
    for old_s, new_s in plan.changed_servers:
        engine.server_removed(old_s)
        engine.server_added(new_s)
    for new_s in plan.added_servers:
        engine.server_added(new_s)
        engine.reg.log(f"Added downstream server {new_s.address_str}")
    if plan.added_servers:
        engine.loop.create_task(engine.health.initial(list(plan.added_servers)))


def _swap_listeners(engine: Engine, plan: ReloadPlan) -> None:
    for fe in plan.removed_listeners:
        retire_listener(engine, fe)
    held = held_addresses(plan)
    for fe in plan.added_listeners:
        if address_of(fe) in held:      # its address was freed just now by retire_listener
            try:
                bind_frontend(fe, engine.reg.log, engine.role == SUPERVISOR)
            except Exception as e:  # noqa: BLE001 -- the rest of the reload stands
                engine.reg.log(f"Error binding the new listener {fe.address()}: {e}")
                continue
        if fe.tcp:
            engine.reg.log(f"Listening on {fe.address()}")
        if engine.role != SUPERVISOR:   # the workers serve it (pydist.workers.supervisor)
            engine.loop.create_task(engine.start_frontend(fe))


def retire_listener(engine: Engine, fe: FrontendDecl) -> None:
    """Stop reading now; UDP answers to forwarded queries still leave through the socket
    until the UDP timeout has passed, TCP connections already open run to their end."""
    loop = engine.loop
    server = engine.tcp_servers.pop(id(fe), None)
    if server is not None:
        server.close()           # the listening socket; open connections go on
    elif fe.sock_tcp is not None:
        fe.sock_tcp.close()
    fe.sock_tcp = None
    sock = fe.sock_udp
    if sock is not None:
        loop.remove_reader(sock.fileno())
        if _same_address_rebound(engine, fe):
            sock.close()
        else:
            loop.call_later(engine.reg.settings.udp_timeout + 1, sock.close)
    engine.reg.log(f"Stopped listening on {fe.address()}")


def _same_address_rebound(engine: Engine, fe: FrontendDecl) -> bool:
    """A listener replaced at the same address: its port must be free for the new one now."""
    return any(address_of(other) == address_of(fe) for other in engine.reg.frontends
               if other is not fe)


def _swap_side_services(engine: Engine, old: Registry, new: Registry) -> None:
    """Web server, consoles, carbon and remote loggers follow the new declarations."""
    _swap_web(engine, old, new)
    for address in new.console_addresses:
        if address not in old.console_addresses:
            engine.open_console(address)
    new.console_addresses = sorted(set(old.console_addresses) | set(new.console_addresses))
    if engine.carbon_task is not None:
        engine.carbon_task.cancel()
        engine.carbon_task = None
    engine.start_carbon()
    for logger in old.remote_loggers:
        task: Any = getattr(logger, "task", None)
        if task is not None:
            engine.loop.call_later(LOGGER_GRACE, task.cancel)
    for logger in new.remote_loggers:
        logger.start(engine.loop)


def _swap_web(engine: Engine, old: Registry, new: Registry) -> None:
    server = engine.web_server
    if server is None:
        if new.web.address is not None:
            new.log("A webserver declared by a reload needs a restart to be opened")
        return
    if new.web.address not in (None, old.web.address):
        new.log(f"The webserver stays on {old.web.address[0]}:{old.web.address[1]}: "
                "a new address for it needs a restart")
    new.web.address = old.web.address
    server.observe(new)
