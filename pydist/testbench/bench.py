"""Run one made-up query through the packet path with no network, and say what happened.

The bench drives the real `PacketPath` (the same rules, pools, policies and cache code that
serve), but everything around it is a stand-in that acts at once: the client socket or TCP
reply records the answer, each server's UDP and TCP transports answer the query they are given
(`standin.py`), and `loop.call_later` (DelayAction) runs its callback on the spot and notes the
delay. So a query is traced in one synchronous call, and a trace never waits nor sends.

Two modes: `offline` (pydist-test: the bench's own registry, evaluated from the config in
check mode, backends answered by the stand-in), and `dry` (the console's `pydist.trace()` on a
running server: the live rules, pools and caches are consulted, counters are put back as they
were, and a query that would go to a backend is reported, not sent)."""
from __future__ import annotations

import copy
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pydist.backend.server import AUTO, DownstreamState
from pydist.dns.wire import WireError, parse_question
from pydist.frontend.udp import MAX_UDP_QUERY
from pydist.packet_path import PacketPath
from pydist.transport import Transport
from pydist.verdict import ANSWER, DEFERRED_KIND, FORWARD
from pydist.registry import ClientState, Registry
from pydist.rings import Rings
from pydist.rules.chain import Rule
from pydist.stats import Stats
from pydist.testbench.cases import Case
from pydist.testbench.standin import StandInTCP, StandInUDP, build_query

CACHE_COUNTERS = ("hits", "misses", "lookup_collisions", "deferred_lookups")


@dataclass
class Trace:
    """What one case came to."""
    case: Case
    outcome: str = "drop"          # drop | answer | forward | cache-hit | no-server | error
    rules: list[tuple[int, Rule]] = field(default_factory=list)        # matched, in order
    response_rules: list[tuple[str, int, Rule]] = field(default_factory=list)
    pool: str | None = None
    server: DownstreamState | None = None
    answer: bytes | None = None
    delay_ms: int = 0
    error: str = ""

    @property
    def rcode(self) -> int | None:
        return None if self.answer is None or len(self.answer) < 4 else self.answer[3] & 0x0F

    @property
    def truncated(self) -> bool:
        return self.answer is not None and len(self.answer) > 2 and bool(self.answer[2] & 0x02)

    @property
    def deciding_rule(self) -> tuple[int, Rule] | None:
        """The last query rule that matched: the one whose action stopped the chain, or the
        last to act on a query that went on to its pool."""
        return self.rules[-1] if self.rules else None


class _Capture:
    """The client's side, a stand-in frontend (the sink of a forwarded query): the answer sent,
    or the drop."""

    def __init__(self, loop: "_InstantLoop", udp: bool) -> None:
        self.loop = loop
        self.udp = udp
        self.resp: bytes | None = None
        self.done = False

    def take(self, resp: bytes | None, delay_ms: int = 0) -> None:
        if delay_ms > 0:
            self.loop.delay_ms = delay_ms
        self.resp = None if resp is None else bytes(resp)
        self.done = True

    def act(self, v: Any, backends: Any) -> None:
        """The query step's verdict, acted on as a frontend would (DelayAction: UDP only)."""
        if v.kind == ANSWER:
            self.take(v.data, v.delay_ms if self.udp else 0)
        elif v.kind == DEFERRED_KIND:
            v.then(lambda later: self.act(later, backends))
        elif v.kind != FORWARD or not backends.forward(v, self, self):
            self.take(None)

    def answer(self, st: Any, resp: bytes, delay_ms: int) -> None:
        self.take(resp, delay_ms if st.transport is Transport.DO53_UDP else 0)

    def answer_part(self, st: Any, resp: bytes) -> None:
        self.take(resp)

    def end(self, st: Any) -> None:
        self.take(None)

    def timed_out(self, st: Any) -> None:
        self.done = True


class _InstantLoop:
    """What the packet path asks of its loop (call_later for delayed answers): done at once,
    the delay noted for the trace."""

    def __init__(self) -> None:
        self.delay_ms = 0

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        self.delay_ms = int(round(delay * 1000))
        fn(*args)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    def time(self) -> float:
        return time.monotonic()


class BenchPath(PacketPath):
    """The packet path with its own counters and rings (nothing of a running server's figures
    moves) and an instant loop."""

    def __init__(self, registry: Registry, loop: _InstantLoop) -> None:
        super().__init__(registry, loop)
        self.stats = Stats()
        self.rings = Rings(64)

    def refresh(self) -> None:
        super().refresh()
        self.query_counter = None      # a trace is not a query the operator's counters saw


class TestBench:
    """Runs cases against one registry; `dry` for a live one (see the module docstring)."""

    __test__ = False      # not a pytest class, whatever its name

    def __init__(self, registry: Registry, dry: bool = False) -> None:
        self.reg = registry
        self.dry = dry
        self.loop = _InstantLoop()
        if registry.rings is None:
            registry.rings = Rings(registry.settings.ring_buffer_size)
        self.path = BenchPath(registry, self.loop)
        self.forwarded: list[tuple[DownstreamState, bytes]] = []
        if not dry:
            self._install_standins()

    # ---- set-up
    def _install_standins(self) -> None:
        """Offline: every server answered by the stand-in, and up unless the config set it
        down (no health check runs; the stand-in would pass them)."""
        for server in self.reg.servers:
            self._standin(server)
            if server.availability == AUTO:
                server.up_status = True
        self.path.refresh()

    def _standin(self, server: DownstreamState) -> tuple[StandInUDP, StandInTCP]:
        udp = StandInUDP(server, self.path, self.forwarded, answer=not self.dry)
        tcp = StandInTCP(server, self.forwarded, answer=not self.dry)
        server.udp, server.tcp_pool = udp, tcp
        return udp, tcp

    def _frontend(self, transport: str) -> ClientState:
        kind = {"udp": "plain", "tcp": "plain", "dot": "tls", "doh": "doh"}[transport]
        for decl in self.reg.frontends:
            if decl.kind == kind:
                return decl.udp_state if transport == "udp" else decl.tcp_state
        if kind != "plain":
            raise LookupError(f"the config has no {'addTLSLocal' if kind == 'tls' else 'addDOHLocal'}"
                              f" listener for a {transport} case")
        from pydist.registry import FrontendDecl
        decl = FrontendDecl("127.0.0.1", 53)
        return decl.udp_state if transport == "udp" else decl.tcp_state

    # ---- running
    def run(self, case: Case) -> Trace:
        """One case, traced."""
        trace = Trace(case)
        try:
            data = case.wire if case.wire is not None else build_query(case)
            fe = self._frontend(case.transport)
        except (ValueError, LookupError) as e:
            trace.outcome, trace.error = "error", str(e)
            return trace
        if self.dry:
            with _PutBack(self.reg):
                self._run(case, data, copy.copy(fe), trace)
        else:
            self._run(case, data, fe, trace)
        return trace

    def _run(self, case: Case, data: bytes, fe: ClientState, trace: Trace) -> None:
        client = (case.client, 53000)
        if not self.reg.acl.match(case.client):
            trace.outcome, trace.error = "drop", "refused by the ACL"
            return
        if len(data) < 12 or len(data) > MAX_UDP_QUERY or data[2] & 0x80:
            trace.outcome, trace.error = "drop", "not a query dnsdist would take"
            return
        try:
            parse_question(data)
        except WireError as e:
            trace.outcome, trace.error = "drop", f"malformed: {e}"
            return
        before = _matches(self.reg)
        capture = _Capture(self.loop, fe.transport is Transport.DO53_UDP)
        self.forwarded.clear()
        self.loop.delay_ms = 0
        saved = self._standins_for_dry() if self.dry else None
        if not self.dry:
            for server in self.reg.servers:
                server.udp.mode = server.tcp_pool.mode = case.backend
        hits = self.path.stats.cache_hits
        no_server = self.path.stats.no_policy
        policies = _RecordingPolicies(self.reg)
        transport = fe.transport
        try:
            with policies:
                capture.act(self.path.query_step(data, client, None, transport, fe, time.time()),
                            self.path.backends)
        except Exception as e:  # noqa: BLE001 -- a trace reports a failing rule, never dies
            trace.outcome, trace.error = "error", f"{type(e).__name__}: {e}"
        finally:
            if saved is not None:
                _restore_transports(saved)
        trace.pool = policies.pool()
        if self.path.stats.no_policy > no_server:
            trace.outcome = "no-server"
        self._read_outcome(trace, capture, before, self.path.stats.cache_hits > hits)

    def _standins_for_dry(self) -> list[tuple[DownstreamState, Any, Any]]:
        """Dry mode: the live servers' transports swapped for recording stand-ins for the
        one synchronous call (nothing is sent), then put back."""
        saved = [(s, s.udp, s.tcp_pool) for s in self.reg.servers]
        for s in self.reg.servers:
            self._standin(s)
        return saved

    def _read_outcome(self, trace: Trace, capture: _Capture, before: dict[int, int],
                      hit: bool) -> None:
        self._matched_rules(trace, before)
        trace.delay_ms = self.loop.delay_ms
        if self.forwarded:
            trace.server = self.forwarded[-1][0]
        if trace.outcome == "error":
            return
        if capture.done and capture.resp is not None:
            trace.answer = capture.resp
            if trace.outcome != "no-server":      # servFailWhenNoServer's answer stays that
                trace.outcome = "cache-hit" if hit else "forward" if self.forwarded else "answer"
        elif self.forwarded and self.dry:
            trace.outcome = "forward"

    def _matched_rules(self, trace: Trace, before: dict[int, int]) -> None:
        for kind, chain in self.reg.rules.items():
            for pos, rule in enumerate(chain.rules):
                if rule.matches > before.get(id(rule), 0):
                    if kind == "query":
                        trace.rules.append((pos, rule))
                    else:
                        trace.response_rules.append((kind, pos, rule))
        if self.dry:      # the live counters stay as the traffic left them
            for chain in self.reg.rules.values():
                for rule in chain.rules:
                    rule.matches = before.get(id(rule), rule.matches)


def _matches(reg: Registry) -> dict[int, int]:
    return {id(r): r.matches for chain in reg.rules.values() for r in chain.rules}


class _RecordingPolicies:
    """For one call: every policy records the servers it was handed, so the trace names the
    pool the query was routed to (whatever routed it: a PoolAction, a Lua action, the
    default), then the policies are put back as they were."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.handed: list[tuple] = []
        self.policies = {id(p): p for p in [reg.policy] + [pl.policy for pl in reg.pools.values()]
                         if p is not None}
        self.saved: list[tuple[Any, Callable]] = []

    def __enter__(self) -> "_RecordingPolicies":
        for policy in self.policies.values():
            fn = policy.fn

            def recording(servers: Any, dq: Any, fn: Callable = fn) -> Any:
                self.handed.append(servers)
                return fn(servers, dq)
            self.saved.append((policy, fn))
            policy.fn = recording
        return self

    def __exit__(self, *exc: object) -> None:
        for policy, fn in self.saved:
            policy.fn = fn

    def pool(self) -> str | None:
        if not self.handed:
            return None
        servers = self.handed[-1]
        for name, pool in self.reg.pools.items():
            if pool.servers is servers:
                return name
        return None


def _restore_transports(saved: list[tuple[DownstreamState, Any, Any]]) -> None:
    for server, udp, tcp in saved:
        server.udp, server.tcp_pool = udp, tcp


class _PutBack:
    """Dry mode: the live caches' counters as they were before the trace."""

    def __init__(self, reg: Registry) -> None:
        self.caches = [p.cache for p in reg.pools.values() if p.cache is not None]
        self.saved: list[dict[str, int]] = []

    def __enter__(self) -> None:
        self.saved = [{n: getattr(c, n) for n in CACHE_COUNTERS if hasattr(c, n)}
                      for c in self.caches]

    def __exit__(self, *exc: object) -> None:
        for cache, values in zip(self.caches, self.saved):
            for name, value in values.items():
                setattr(cache, name, value)


def valid_client(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
