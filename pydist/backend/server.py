"""Downstream servers: what the config declared about a backend, its state and its counters."""
from __future__ import annotations

from typing import Any

from pydist.dns.netmask import format_address
from pydist.qps import QPSLimiter
from pydist.uuids import random_uuid

UP, DOWN, AUTO = "Up", "Down", "Auto"

# newServer{} options and dnsdist 1.7 defaults (facts §2); unknown keys are ignored as in 1.7.
SERVER_DEFAULTS: dict[str, Any] = {
    "name": None, "id": None, "pool": None, "order": 1, "weight": 1, "qps": None, "retries": 5,
    "tcpConnectTimeout": 5, "tcpSendTimeout": 30, "tcpRecvTimeout": 30, "tcpFastOpen": False,
    "ipBindAddrNoPort": True, "source": "", "sockets": 1, "checkName": "a.root-servers.net.",
    "checkType": "A", "checkClass": 1, "checkFunction": None, "checkTimeout": 1000,
    "checkInterval": 1, "checkTCP": False, "mustResolve": False, "maxCheckFailures": 1,
    "rise": 1, "setCD": False, "useClientSubnet": False, "disableZeroScope": False,
    "useProxyProtocol": False, "reconnectOnUp": False, "addXPF": 0, "maxInFlight": 1,
    "cpus": None, "tcpOnly": False, "tls": "", "subjectName": "", "subjectAddr": "",
    "validateCertificates": True, "caStore": "", "ciphers": "", "ciphers13": "",
    "ciphersTLS13": "", "releaseBuffers": True, "enableRenegotiation": False, "dohPath": "",
    "addXForwardedHeaders": False, "sni": "",
}


class DownstreamState:
    """One backend. Counters are plain ints bumped by the packet path and the UDP responder."""

    def __init__(self, host: str, port: int, options: dict[str, Any] | None = None) -> None:
        opts = dict(SERVER_DEFAULTS)
        opts.update(options or {})
        self.options = opts
        self.host, self.port = host, port
        self.addr = (host, port)
        self.address_str = format_address(host, port)
        self.explicit_name = opts["name"] is not None
        self.name: str = str(opts["name"]) if self.explicit_name else self.address_str
        self.uuid: str = canonical_uuid(opts["id"]) if opts["id"] else random_uuid()
        self.order = int(opts["order"])
        self.weight = int(opts["weight"])
        qps = opts["qps"]
        # an explicit qps=0 is a limiter that never passes (firstAvailable skips the server)
        self.qps = QPSLimiter(0, 0, passthrough=False) if qps == 0 else QPSLimiter(float(qps or 0))
        self.pools: list[str] = []
        self.availability = AUTO
        self.up_status = False
        # as dnsdist 1.7.3: dohPath means DoH only with tls; alone it is ignored (plain Do53)
        self.is_doh = bool(opts["tls"] and opts["dohPath"])
        self.tcp_only = bool(opts["tcpOnly"] or opts["tls"])
        self.x_forwarded = self.is_doh and bool(opts["addXForwardedHeaders"])
        self.use_ecs = bool(opts["useClientSubnet"])        # one flag test on the packet path
        self.use_proxy = bool(opts["useProxyProtocol"])
        self.xpf_code = int(opts["addXPF"] or 0)           # XPF record type, 0 = none
        # counters (facts §2.3)
        self.queries = self.responses = self.send_errors = self.reuseds = 0
        self.outstanding = 0
        self.latency_usec = 0.0
        self.latency_usec_tcp = 0.0
        self.query_load = 0.0
        self.drop_rate = 0.0
        self._prev_queries = self._prev_reuseds = 0
        self.tcp = {k: 0 for k in TCP_COUNTERS}
        self.tls_resumptions = 0
        # health-check state machine
        self.check_failures = 0
        self.check_successes = 0
        self.check_counter = 0
        self.hash_points: Any = None      # chashed's ring points, computed on first use
        # transport, filled by the engine when serving
        self.udp = None
        self.tcp_pool = None
        self.tls = None           # BackendTLS for a DoT or DoH server

    def is_up(self) -> bool:
        if self.availability == DOWN:
            return False
        if self.availability == UP:
            return True
        return self.up_status

    def status_text(self) -> str:
        if self.availability == UP:
            return "UP"
        if self.availability == DOWN:
            return "DOWN"
        return "up" if self.up_status else "down"

    def name_with_addr(self) -> str:
        if self.explicit_name and self.name:
            return f"{self.name} ({self.address_str})"
        return self.address_str

    def set_up(self) -> None:
        self.availability = UP

    def set_down(self) -> None:
        self.availability = DOWN
        self.latency_usec = 0.0

    def set_auto(self, status: bool | None = None) -> None:
        if status is not None:
            self.up_status = bool(status)
        self.availability = AUTO

    def update_rates(self, elapsed: float) -> None:
        """Qps and Drate recomputed every second, as dnsdist's health thread does."""
        if elapsed <= 0:
            return
        self.query_load = (self.queries - self._prev_queries) / elapsed
        self.drop_rate = (self.reuseds - self._prev_reuseds) / elapsed
        self._prev_queries, self._prev_reuseds = self.queries, self.reuseds

    def console_str(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"DownstreamState({self.name_with_addr()})"


def canonical_uuid(text: Any) -> str:
    """The id as dnsdist prints it (boost's lowercase form); chashed hashes this text."""
    import uuid   # only configs naming an id parse one (see pydist.uuids)
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        return str(text)


TCP_COUNTERS = (
    "tcpDiedSendingQuery", "tcpDiedReadingResponse", "tcpGaveUp", "tcpReadTimeouts",
    "tcpWriteTimeouts", "tcpConnectTimeouts", "tcpCurrentConnections",
    "tcpMaxConcurrentConnections", "tcpNewConnections", "tcpReusedConnections",
)
