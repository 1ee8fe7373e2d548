"""What the configuration and the console declared, and nothing else. Lua bindings write it;
the engine observes it (RegistryObserver: each change is an event it applies to the live
sockets and the packet path), so the registry never reaches the engine."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from pydist.backend.server import DownstreamState
from pydist.dns.netmask import NetmaskGroup
from pydist.dynblocks import DynBlocks
from pydist.policies import PolicySettings, ServerPolicy, builtin_policies
from pydist.rules.chain import RuleChain
from pydist.querycount import QueryCounter
from pydist.reload.settings import ReloadSettings
from pydist.stats import Stats
from pydist.transport import Transport, listener_transport
from pydist.web.settings import WebSettings

SERVE, CHECK, CLIENT = "serve", "check-config", "client"
# a hot reload evaluating the new file: bindings record everything, bind and connect nothing
RELOAD = "reload"

DEFAULT_ACL = ("127.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16",
               "192.168.0.0/16", "172.16.0.0/12", "::1/128", "fc00::/7", "fe80::/10")
DEFAULT_CONSOLE_ACL = ("127.0.0.0/8", "::1/128")


class ClientState:
    """One listening socket's counters (dnsdist keeps them per socket: UDP and TCP apart)."""

    def __init__(self, decl: "FrontendDecl", proto: str) -> None:
        self.decl = decl
        self.proto = proto
        self.transport = listener_transport(decl.kind, proto == "UDP")
        # what the rings record, as dnsdist 1.7.3: DoT queries as DoTCP (DoH and DNSCrypt
        # queries as themselves), and every answer as the transport of its socket
        self.socket_transport = Transport.DO53_UDP if proto == "UDP" else Transport.DO53_TCP
        self.ring_transport = self.socket_transport if self.transport is Transport.DOT \
            else self.transport
        self.queries = 0
        self.responses = 0
        self.tcp_counters: dict[str, int] = {}

    def address(self) -> str:
        return self.decl.address()

    def console_str(self) -> str:
        return self.decl.address()


@dataclass
class FrontendDecl:
    """One listener as declared (addLocal/setLocal/addTLSLocal...): the engine binds it later."""
    host: str
    port: int
    udp: bool = True
    tcp: bool = True
    tls: Any = None
    doh: Any = None               # a DOHFrontend (addDOHLocal)
    dnscrypt: Any = None          # a DNSCryptContext (addDNSCryptBind)
    kind: str = "plain"           # plain | tls | doh | dnscrypt
    pktinfo: bool = False         # a wildcard UDP listener reading each query's destination
    options: dict = field(default_factory=dict)
    sock_udp: Any = None
    sock_tcp: Any = None
    udp_state: Any = None
    tcp_state: Any = None

    def __post_init__(self) -> None:
        self.udp_state = ClientState(self, "UDP")
        self.tcp_state = ClientState(self, "TCP")

    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def console_str(self) -> str:
        return self.address()


class ServerPool:
    """A named pool: an order-sorted tuple of servers, an optional policy and packet cache."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.servers: tuple[DownstreamState, ...] = ()
        self.policy: ServerPolicy | None = None
        self.cache = None
        self.ecs = False

    def add(self, server: DownstreamState) -> None:
        if server not in self.servers:
            self.servers = tuple(sorted(self.servers + (server,), key=lambda s: s.order))

    def remove(self, server: DownstreamState) -> None:
        self.servers = tuple(s for s in self.servers if s is not server)

    def console_str(self) -> str:
        return self.name


@dataclass
class Settings:
    """Global knobs (facts §12) with dnsdist 1.7 defaults."""
    snmp_traps: bool = False      # snmpAgent(true): traps asked for (pydist has no agent)
    udp_timeout: int = 2
    servfail_when_no_server: bool = False
    max_udp_outstanding: int = 65535
    tcp_recv_timeout: int = 2
    tcp_send_timeout: int = 2
    max_tcp_queries_per_connection: int = 0
    max_tcp_connection_duration: int = 0
    max_tcp_connections_per_client: int = 0
    max_tcp_client_threads: int = 10
    max_tcp_queued_connections: int = 10000
    security_poll_suffix: str = "secpoll.powerdns.com."
    security_poll_interval: int = 3600
    verbose_health_checks: bool = False
    payload_size_self_generated: int = 1232
    add_edns_to_self_generated: bool = True
    stale_cache_entries_ttl: int = 0
    cache_cleaning_delay: int = 60
    cache_cleaning_percentage: int = 100
    drop_empty_queries: bool = False
    allow_empty_response: bool = False
    truncate_tc: bool = False
    fixup_case: bool = False
    ring_buffer_size: int = 10000
    ring_buffer_shards: int = 10
    ecs_source_prefix_v4: int = 24
    ecs_source_prefix_v6: int = 56
    ecs_override: bool = False
    proxy_apply_acl: bool = False          # setProxyProtocolApplyACLToProxiedClients
    proxy_max_payload: int = 512           # setProxyProtocolMaximumPayloadSize
    verbose: bool = False
    workers: int = 0                       # pydist.setWorkers (0: not set; pydist.workers)


class RegistryObserver(Protocol):
    """What the runtime (the Engine) is told when the registry changes while serving."""

    def server_added(self, server: DownstreamState) -> None: ...

    def server_removed(self, server: DownstreamState) -> None: ...

    def config_changed(self) -> None:
        """Rules, dynamic blocks, pools, policies, QPS limits or query counting changed: what
        the packet path may skip is recomputed."""

    def web_declared(self) -> None:
        """webserver() bound a socket (reg.web.sock) at runtime."""

    def carbon_declared(self) -> None: ...

    def console_declared(self, address: tuple[str, int]) -> None: ...

    def remote_logger_declared(self, logger: Any) -> None: ...


class Registry:
    """The one object holding the declared configuration, plus the live counters."""

    def __init__(self, mode: str = SERVE, log: Callable[[str], None] | None = None) -> None:
        self.mode = mode
        self.log = log or (lambda line: print(line, flush=True))
        self.frontends: list[FrontendDecl] = []
        self.cli_locals: list[str] = []
        self.acl = NetmaskGroup(DEFAULT_ACL)
        self.proxy_acl = NetmaskGroup(())            # setProxyProtocolACL (empty: none)
        self.query_counter = QueryCounter()          # setQueryCount / getQueryCounters
        self.console_acl = NetmaskGroup(DEFAULT_CONSOLE_ACL)
        self.servers: list[DownstreamState] = []
        self.pools: dict[str, ServerPool] = {"": ServerPool("")}
        self.policy_settings = PolicySettings()   # setRoundRobinFailOnNoServer, ... (policies)
        self.builtin_policies = builtin_policies(self.policy_settings)
        self.policy: ServerPolicy = self.builtin_policies["leastOutstanding"]
        self.settings = Settings()
        self.stats = Stats()
        self.console_address: tuple[str, int] | None = None
        self.console_key: bytes | None = None
        self.console_settings = {"log_connections": True, "max_connections": 100,
                                 "max_msg_size": 10000000}
        self.console_addresses: list[tuple[str, int]] = []   # one listener per controlSocket()
        self.carbon_servers: list[Any] = []                  # carbonServer() (pydist.carbon)
        self.remote_loggers: list[Any] = []                  # newRemoteLogger() (serve mode)
        self.config_done = False
        self.included_directories: list[str] = []    # includeDirectory(): watched for reloads
        # pydist.reload() and the web API reach the runtime's reload through this
        # (pydist.reload.triggers.ReloadControl); pydist.watchConfig() declares reload_settings
        self.reload_control: Any = None
        # pydist.saveCache with worker processes (pydist.workers.snapshots): (cache, file or
        # None) -> the console's answer; None: this process holds the entries and writes them
        self.cache_saver: Any = None
        self.reload_settings = ReloadSettings()
        self.observers: list[RegistryObserver] = []     # the runtime, once serving
        self.unsupported: list[str] = []
        self.web = WebSettings()          # webserver()/setWebserverConfig() (facts §7)
        self.rings = None
        # rule chains (query, response, cachehit, selfanswered); a change refreshes the fast path
        self.rules: dict[str, RuleChain] = {k: RuleChain(k) for k in
                                            ("query", "response", "cachehit", "selfanswered")}
        for chain in self.rules.values():
            chain.on_change = self._rules_changed
        self.dynblock_groups: list[Any] = []
        self.dynblocks = DynBlocks(self.stats, lambda line: self.log(line))
        self.dynblocks.on_change = self._rules_changed

    def _rules_changed(self) -> None:
        for o in self.observers:
            o.config_changed()

    def changed(self) -> None:
        """Something the packet path depends on changed (a server's QPS, query counting)."""
        self._rules_changed()

    # --- runtime declarations (webserver(), carbonServer(), controlSocket()... at runtime)
    def declare_web(self) -> None:
        for o in self.observers:
            o.web_declared()

    def declare_carbon(self) -> None:
        for o in self.observers:
            o.carbon_declared()

    def declare_console(self, address: tuple[str, int]) -> None:
        """One more console listener: opened now when serving, else after startup."""
        if not self.observers:
            self.console_addresses.append(address)
        for o in self.observers:
            o.console_declared(address)

    def declare_remote_logger(self, logger: Any) -> None:
        """Loggers connect only when serving (never in --check-config or the console client)."""
        if self.mode not in (SERVE, RELOAD):
            return
        self.remote_loggers.append(logger)
        for o in self.observers:
            o.remote_logger_declared(logger)

    # --- modes
    @property
    def serving(self) -> bool:
        return self.mode == SERVE

    # --- servers and pools
    def get_pool(self, name: str) -> ServerPool:
        pool = self.pools.get(name)
        if pool is None:
            pool = self.pools[name] = ServerPool(name)
        return pool

    def add_server(self, server: DownstreamState, pools: list[str]) -> None:
        self.servers.append(server)
        self.servers.sort(key=lambda s: s.order)
        for p in pools or [""]:
            self.add_server_to_pool(server, p)
        for o in self.observers:
            o.server_added(server)

    def add_server_to_pool(self, server: DownstreamState, pool: str) -> None:
        if pool not in server.pools:
            server.pools.append(pool)
        self.get_pool(pool).add(server)
        self._rules_changed()        # the fast path depends on the default pool's servers

    def remove_server_from_pool(self, server: DownstreamState, pool: str) -> None:
        if pool in server.pools:
            server.pools.remove(pool)
        if pool in self.pools:
            self.pools[pool].remove(server)
        self._rules_changed()

    def remove_server(self, server: DownstreamState) -> None:
        for p in list(server.pools):
            self.remove_server_from_pool(server, p)
        self.servers = [s for s in self.servers if s is not server]
        for o in self.observers:
            o.server_removed(server)

    def set_policy(self, policy: ServerPolicy, pool: str | None = None) -> None:
        """The global policy, or a pool's; the fast path is recomputed (a policy may count)."""
        if pool is None:
            self.policy = policy
        else:
            self.get_pool(pool).policy = policy
        self._rules_changed()

    def policy_for(self, pool: ServerPool) -> ServerPolicy:
        return pool.policy or self.policy

    def warn(self, line: str) -> None:
        self.log(line)


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
