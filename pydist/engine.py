"""The serving engine: binds what the Registry declared and runs it all on one uvloop loop."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from typing import Any, Callable

from pydist.backend.healthcheck import HealthChecker
from pydist.backend.server import DownstreamState
from pydist.backend.tcp import BackendTCPPool
from pydist.backend.udp import BackendUDP
from pydist.dns.netmask import family_of
from pydist.frontend import pktinfo
from pydist.frontend.pktinfo import is_wildcard
from pydist.frontend.tcp import TCPClientConnection
from pydist.frontend.udp import UDPFrontend
from pydist.packet_path import PacketPath
from pydist.registry import FrontendDecl, Registry
from pydist.reload.history import ReloadHistory
from pydist.rings import Rings
from pydist.tls.names import TLSConfigError


class BindError(Exception):
    """A listener could not be bound: dnsdist exits 1 with 'Fatal error: binding socket ...'."""


def _bind_device(sock: socket.socket, iface: str, addr: str, log: Callable[[str], None]) -> None:
    """interface= (SO_BINDTODEVICE): a failure is logged and the listener kept, as dnsdist does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    except OSError as e:
        log(f"Error setting up the interface on local address '{addr}': {e.strerror}")


def bind_frontend(fe: FrontendDecl, log: Callable[[str], None] = print,
                  reuse_port: bool = False) -> None:
    """Bind the UDP and TCP sockets of one listener now (before privileges are dropped);
    `reuse_port`: SO_REUSEPORT whatever the options say (worker processes share it)."""
    fam = family_of(fe.host)
    opts = fe.options
    addr = fe.address()
    fe.pktinfo = is_wildcard(fe.host)
    try:
        if fe.tls is not None:
            fe.tls.load()
        if fe.udp:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if opts.get("reusePort") or reuse_port:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if opts.get("interface"):
                _bind_device(s, str(opts["interface"]), addr, log)
            if is_wildcard(fe.host):
                pktinfo.enable(s, fam)
            s.bind((fe.host, fe.port))
            s.setblocking(False)
            fe.sock_udp = s
        if fe.tcp:
            t = socket.socket(fam, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if opts.get("reusePort") or reuse_port:
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if opts.get("interface"):
                _bind_device(t, str(opts["interface"]), addr, log)
            t.bind((fe.host, fe.port))
            t.listen(int(opts.get("tcpListenQueueSize") or socket.SOMAXCONN))
            t.setblocking(False)
            fe.sock_tcp = t
    except OSError as e:
        raise BindError(f"Fatal error: binding socket to {addr}: {e.strerror}") from None
    except TLSConfigError as e:
        raise BindError(f"Fatal error: {e}") from None


# what an engine does (pydist.workers): everything in one process; or, with worker processes,
# the supervisor's share (console, web, carbon, health checks, maintenance: no listener, no
# backend socket) or a worker's (listeners and backends: no check, no web, no carbon)
SINGLE, SUPERVISOR, WORKER = "single", "supervisor", "worker"


class Engine:
    """Owns the loop. Frontends, backends, health checks and the maintenance tick live here."""

    def __init__(self, registry: Registry, loop: asyncio.AbstractEventLoop,
                 role: str = SINGLE) -> None:
        self.reg = registry
        self.loop = loop
        self.role = role
        self.on_web_server: Callable[[Any], None] | None = None   # the supervisor's hook
        self.workers: Any = None          # the Supervisor (pydist.workers) when N > 1
        registry.rings = Rings(registry.settings.ring_buffer_size)
        self.path = PacketPath(registry, loop)
        self.health = HealthChecker(loop, registry)
        self.per_client_tcp: dict[str, int] = {}
        self.exit_code: int | None = None
        self.stopped = asyncio.Event()
        self.last_rates = time.monotonic()
        self.maintenance_hooks: list[Callable[[], None]] = [registry.dynblocks.maintenance]
        self.console_servers: list = []
        self.web_server: Any = None
        self.carbon_task: Any = None
        self.shutdown_hooks: list[Callable[[], None]] = []
        self.tcp_servers: dict[int, Any] = {}     # id(FrontendDecl) -> its asyncio server
        # hot reload (pydist/reload): what evaluates the config file again (set by the cli),
        # the one-second hooks that belong to the current config's Lua state, the history
        self.config_loader: Callable[[Callable[[str], None]], Any] | None = None
        self.config_hooks: list[Callable[[], None]] = [registry.dynblocks.maintenance]
        self.reloads = ReloadHistory()
        registry.observers.append(self)

    # --- what the registry tells its observer (pydist.registry.RegistryObserver)
    def config_changed(self) -> None:
        self.path.refresh()

    def web_declared(self) -> None:
        if self.role != WORKER:          # a worker replaying a console line binds nothing
            self.start_web()

    def carbon_declared(self) -> None:
        if self.role != WORKER:
            self.start_carbon()

    def console_declared(self, address: tuple[str, int]) -> None:
        if self.role != WORKER:
            self.open_console(address)

    def remote_logger_declared(self, logger: Any) -> None:
        if self.role != SUPERVISOR:      # the loggers serve the workers' rules
            logger.start(self.loop)

    # --- backends
    def server_added(self, server: DownstreamState) -> None:
        """Open the transport of a server, at startup or when newServer() runs at runtime
        (the supervisor only makes the TLS context its health checks use)."""
        if server.options.get("tls"):
            # TLS modules load only for configs that use DoT (pyOpenSSL costs ~19 MB of RSS)
            from pydist.backend.tls import TLSBackendPool
            from pydist.tls.backend_context import BackendTLS
            try:
                if server.tls is None:        # newServer() built it, or runtime add
                    server.tls = BackendTLS(server.options)
            except Exception as e:  # unreadable caStore, bad cipher list: this server only
                self.reg.log(f"Error creating the TLS context for {server.name_with_addr()}: {e}")
                server.unusable = True
                return
            if self.role == SUPERVISOR:
                return
            if server.is_doh:
                from pydist.backend.doh import DoHBackendPool
                server.tcp_pool = DoHBackendPool(self.loop, server, self.reg.log,
                                                 self.reg.settings.verbose)
            else:
                server.tcp_pool = TLSBackendPool(self.loop, server, self.reg.log)
            self.path.refresh()
            return
        if self.role == SUPERVISOR:
            return
        if not server.tcp_only:
            server.udp = BackendUDP(self.loop, server, self.reg.settings.max_udp_outstanding,
                                    self.path.backends.udp_answer, self.reg.stats,
                                    self.reg.settings)
        server.tcp_pool = BackendTCPPool(self.loop, server)
        self.path.refresh()

    def server_removed(self, server: DownstreamState) -> None:
        if server.udp is not None:
            server.udp.close()
            server.udp = None
        if server.tcp_pool is not None:
            server.tcp_pool.close()
        self.path.refresh()

    # --- start
    async def start(self) -> None:
        if self.role != WORKER:
            self.start_web()
            self.start_carbon()
        if self.role != SUPERVISOR:
            for logger in self.reg.remote_loggers:
                logger.start(self.loop)
        # as dnsdist: the initial health checks finish before any query is read (queries that
        # arrive meanwhile wait in the kernel's socket buffers instead of finding servers down)
        for s in self.reg.servers:
            self.server_added(s)
        if self.role == SUPERVISOR:
            await self.health.initial()     # the workers are forked after, knowing the states
            self.loop.call_later(1.0, self._tick)
            return
        self._start_cache_extensions()      # snapshots read before any query is
        if self.role == SINGLE:
            await self.health.initial()
        for fe in self.reg.frontends:
            await self.start_frontend(fe)
        self.path.refresh()
        self.loop.call_later(1.0, self._tick)

    async def start_frontend(self, fe: FrontendDecl) -> None:
        """Serve one bound listener (at startup, or a listener a reload added); its TCP
        server is kept (tcp_servers) so a reload can stop it accepting."""
        if fe.dnscrypt is not None:
            await self._start_dnscrypt(fe)
            return
        if fe.sock_udp is not None:
            listener = UDPFrontend(self.path, fe.udp_state, fe.sock_udp, fe.pktinfo)
            self.loop.add_reader(fe.sock_udp.fileno(), listener.readable)
        if fe.sock_tcp is not None and fe.doh is not None:
            from pydist.frontend.doh_http import make_doh_protocol
            self.tcp_servers[id(fe)] = await self.loop.create_server(
                lambda fe=fe: make_doh_protocol(self.path, fe, self.per_client_tcp,
                                                self.reg.settings.verbose),
                sock=fe.sock_tcp)
            if fe.tls is not None:
                from pydist.frontend.tls import schedule_ticket_rotation
                schedule_ticket_rotation(self.loop, fe.tls)
        elif fe.sock_tcp is not None and fe.tls is not None:
            from pydist.frontend.tls import (
                make_tls_protocol,
                schedule_ticket_rotation,
            )
            self.tcp_servers[id(fe)] = await self.loop.create_server(
                lambda fe=fe: make_tls_protocol(self.path, fe.tcp_state, self.per_client_tcp,
                                                fe.tls, self.reg.settings.verbose),
                sock=fe.sock_tcp)
            schedule_ticket_rotation(self.loop, fe.tls)
        elif fe.sock_tcp is not None:
            self.tcp_servers[id(fe)] = await self.loop.create_server(
                lambda fe=fe: TCPClientConnection(self.path, fe.tcp_state, self.per_client_tcp),
                sock=fe.sock_tcp)

    def _start_cache_extensions(self) -> None:
        """pydist.cacheOptions: snapshots read, refreshers and Redis ready; the snapshots are
        written again at shutdown, SIGTERM included (after which the process still dies of
        the signal, as it would without them)."""
        from pydist import cache_ext
        if not cache_ext.configured_caches(self.reg):
            return
        cache_ext.start(self.reg, self.loop)
        if cache_ext.wants_shutdown_save(self.reg):
            self.shutdown_hooks.append(lambda: cache_ext.save_all(self.reg))
            self.loop.add_signal_handler(signal.SIGTERM, self._terminated)

    def _terminated(self) -> None:
        self._run_shutdown_hooks()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def _run_shutdown_hooks(self) -> None:
        hooks, self.shutdown_hooks = self.shutdown_hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception as e:  # noqa: BLE001 -- one hook failing must not stop the others
                self.reg.log(f"Error at shutdown: {e}")

    async def _start_dnscrypt(self, fe: FrontendDecl) -> None:
        """A DNSCrypt listener: its own UDP drain and TCP protocol (pydist/frontend/dnscrypt.py)."""
        from pydist.frontend.dnscrypt import DNSCryptTCPConnection, DNSCryptUDPFrontend
        if fe.sock_udp is not None:
            listener = DNSCryptUDPFrontend(self.path, fe.udp_state, fe.sock_udp, fe.pktinfo)
            self.loop.add_reader(fe.sock_udp.fileno(), listener.readable)
        if fe.sock_tcp is not None:
            self.tcp_servers[id(fe)] = await self.loop.create_server(
                lambda: DNSCryptTCPConnection(self.path, fe.tcp_state, self.per_client_tcp),
                sock=fe.sock_tcp)

    def _tick(self) -> None:
        """Once a second: health checks, UDP timeouts, rates, cache cleaning, Lua maintenance()."""
        if self.exit_code is not None:
            return
        self.loop.call_later(1.0, self._tick)
        path = self.path
        path.tick += 1
        try:
            if self.role != WORKER:
                self.health.tick()
            now_m = time.monotonic()
            elapsed = now_m - self.last_rates
            self.last_rates = now_m
            timeout = self.reg.settings.udp_timeout
            for s in self.reg.servers:
                if s.udp is not None:
                    s.udp.sweep(path.tick, timeout, path.backends.timed_out)
                s.update_rates(elapsed)
            self._clean_caches()
            for hook in tuple(self.maintenance_hooks):   # a reload may replace some
                hook()
        except Exception as e:  # the tick must never die
            self.reg.log(f"Error in maintenance: {e}")

    def _clean_caches(self) -> None:
        delay = max(1, self.reg.settings.cache_cleaning_delay)
        if self.path.tick % delay:
            return
        now = time.time()
        seen = set()
        for pool in self.reg.pools.values():
            c = pool.cache
            if c is not None and id(c) not in seen:
                seen.add(id(c))
                up = any(s.is_up() for s in pool.servers)
                c.maintenance(now, self.reg.settings.cache_cleaning_percentage, up)

    # --- carbon
    def start_carbon(self) -> None:
        """Export to the carbonServer()s: at startup, or at once when one is added at runtime."""
        if self.role == WORKER:          # the supervisor exports the sums
            return
        if self.reg.carbon_servers and self.carbon_task is None:
            from pydist.carbon import carbon_loop
            self.carbon_task = self.loop.create_task(carbon_loop(self.reg))

    # --- web server
    def start_web(self) -> None:
        """Serve the socket webserver() bound (at startup, or at once when called at runtime)."""
        if self.reg.web.sock is None:   # h11 and the router load only for a webserver()
            return
        from pydist.web.server import start_web_server
        self.web_server = start_web_server(self.loop, self.reg, self.web_server,
                                           self.maintenance_hooks)
        if self.on_web_server is not None and self.web_server is not None:
            self.on_web_server(self.web_server)

    # --- console
    def open_console(self, address: tuple[str, int] | None = None) -> None:
        """One console listener per controlSocket() call, as dnsdist starts one thread each;
        a second bind of the same address fails with dnsdist's log line."""
        if self.role == WORKER:          # the supervisor's console reaches the workers
            return
        from pydist.console.server import bind_console_socket, serve_console
        from pydist.dns.netmask import format_address
        host, port = address or self.reg.console_address
        try:
            sock = bind_console_socket(host, port)
        except OSError as e:
            where = format_address(host, port)
            self.reg.log(f"Unable to bind to control socket on {where}: binding socket to "
                         f"{where}: {e.strerror}")
            return
        # read through self.reg and self.console_execute at each use: a reload replaces both
        self.console_servers.append(self.loop.create_task(serve_console(
            self.loop, sock, execute=lambda line: self.console_execute(line),
            get_key=lambda: self.reg.console_key,
            acl_allows=lambda addr: self.reg.console_acl.match(addr),
            max_connections=lambda: self.reg.console_settings["max_connections"],
            log_connections=lambda: self.reg.console_settings["log_connections"],
            max_msg_size=lambda: self.reg.console_settings["max_msg_size"], log=self.reg.log)))

    console_execute: Callable[[str], str] = staticmethod(lambda line: "")

    def shutdown(self, code: int = 0) -> None:
        self._run_shutdown_hooks()
        self.exit_code = code
        self.stopped.set()


def startup_banner(reg: Registry) -> None:
    """The lines dnsdist prints between binding and serving, in its order."""
    reg.log("dnsdist 1.7.3 comes with ABSOLUTELY NO WARRANTY. This is free software, and you "
            "are welcome to redistribute it according to the terms of the GPL version 2")
    reg.log("ACL allowing queries from: " + ", ".join(reg.acl.to_strings()))
    reg.log("Console ACL allowing connections from: " + ", ".join(reg.console_acl.to_strings()))
    if reg.console_address is not None and (reg.console_key is None or len(reg.console_key) != 32):
        reg.log("Warning, the console has been enabled via 'controlSocket()' but no key has been "
                "set with 'setKey()' so all connections will fail until a key has been set")
    if not reg.servers:
        reg.log("No downstream servers defined: all packets will get dropped")


def write_stdout(line: str) -> None:
    sys.stdout.buffer.write(line.encode("latin-1", "replace") + b"\n")
    sys.stdout.buffer.flush()


_ = os
