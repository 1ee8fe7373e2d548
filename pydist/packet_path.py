"""One query's journey, written down once (dnsdist's processQuery): checks -> rules -> pool ->
cache -> policy -> a verdict; and the response's: rules -> cache insert -> the bytes to send.
Nothing here sends: frontends (pydist/frontend/) own the I/O and act on the verdicts, the backend
layer (pydist/backend/dispatch.py) forwards and hands answers back."""
from __future__ import annotations

import time
from typing import Any

from pydist.backend.dispatch import BackendDispatch
from pydist.backend.udp import InFlight, answer_matches
from pydist.backend.xfr import XFR_TYPES
from pydist.dns.ecs import ecs_response, zero_scope_lookup
from pydist.dns.proxyprotocol import header_for_query, proxy_destination
from pydist.dns.synth import notimp_for_empty, self_answer, truncate_for_udp, truncate_tc
from pydist.dns.wire import WireError, edns_info, parse_question
from pydist.dns.xpf import add_xpf
from pydist.dnsquestion import DNSQuestion
from pydist.rule_path import RulePath, left_as_is
from pydist.rules.responses import apply_response_rules
from pydist.transport import DATAGRAM, DNSCRYPT, DO53_UDP, DOH, DOT, UDP_PATH, Transport
from pydist.verdict import DROP, NO_DOWNSTREAM, Deferred, QueryOrigin, Verdict, answer

_new_object = object.__new__


class PacketPath(RulePath):
    """The query and response steps, and the hot-path references the frontends read (so the
    UDP drain loop reads locals, not registry lookups)."""

    def __init__(self, registry: Any, loop: Any) -> None:
        self.reg = registry
        self.loop = loop
        self.stats = registry.stats
        self.settings = registry.settings
        self.rings = registry.rings
        self.tick = 0
        self.default_pool = registry.get_pool("")
        self.backends = BackendDispatch(self)
        self.refresh()

    def refresh(self) -> None:
        """Recompute what the fast path may skip; called when the config changes at runtime."""
        pool = self.default_pool
        policy = self.reg.policy_for(pool)
        rules_allow_fast_path = self.refresh_rules()
        self.proxied_servers = tuple(s for s in self.reg.servers if s.use_proxy)
        self.proxy_acl = self.reg.proxy_acl if self.reg.proxy_acl.to_strings() else None
        exact_ok = (
            pool.cache is not None and policy.side_effect_free
            and not (policy.name == "firstAvailable" and any(not s.qps.passthrough for s in pool.servers))
            and not any(s.tcp_only or s.use_ecs for s in pool.servers) and not pool.ecs
            and self.settings.stale_cache_entries_ttl == 0)
        counter = self.reg.query_counter
        self.query_counter = counter if counter.enabled else None
        counting = self.query_counter is not None      # every query must reach the counter
        self.fast_cache = pool.cache if exact_ok and rules_allow_fast_path and not counting \
            else None
        # after rules that left a UDP query as it came (a LuaAction returning None...), the
        # full path's cache lookup would find what the exact-bytes level holds
        self.cache_after_rules = (pool.cache if exact_ok and self.query_rules
                                  and not self.cachehit_rules else None)

    # ---- query intake, the same for every frontend (the UDP drain loop inlines it)
    def count_query(self, fe: Any) -> None:
        """A query read from a frontend: counted before any check (dnsdist's queries)."""
        self.stats.queries += 1
        fe.queries += 1

    def accept_query(self, data: bytes, client: Any, fe: Any, now: float) -> bool:
        """The header check every transport makes (a response is no query: noncompliant),
        then the query ring; False when the frontend must refuse it its own way."""
        if data[2] & 0x80:
            self.stats.noncompliant_queries += 1
            return False
        self.rings.queries.append((now, client, data, fe.ring_transport))
        return True

    def _count_query(self, data: bytes, qname_end: int, qtype: int, qclass: int, addr: Any,
                     fe: Any, transport: Transport, udp: bool, now: float) -> None:
        """setQueryCount(true): counted before the rules, under the name or a filter's key."""
        dq = DNSQuestion(data, qname_end, qtype, qclass, addr, fe, not udp, now, transport)
        try:
            self.query_counter.count(str(dq.qname).rstrip(".") or ".", lambda: dq)
        except Exception as e:  # noqa: BLE001 -- a failing Lua filter: said, query not counted
            self._rule_bug(e, "Error in the query count filter, query not counted")

    # ---- the query step, shared by every transport (dnsdist's processQuery)
    def query_step(self, data: bytes, addr: Any, local: Any, transport: Transport, fe: Any,
                   now: float, origin: QueryOrigin | None = None) -> Verdict | InFlight:
        """One query after intake: dropped, answered now, or to forward (its in-flight state,
        holding the server and the prepared query). Sends nothing: the frontend acts on it.
        `local`: the address the query reached when the listener's own is not it (wildcard
        listener, proxy protocol), else None."""
        stats = self.stats
        udp = transport in UDP_PATH
        if data[2] & 0x01:
            stats.rdqueries += 1
        if data[4] == 0 and data[5] == 0:
            stats.empty_queries += 1
            if self.settings.drop_empty_queries:
                return DROP
            # as 1.7.3: this NOTIMP is neither a frontend response nor a latency sample
            return self.local_answer(notimp_for_empty(data), addr, fe, transport,
                                     fe_count=False, sample=False)
        try:
            qname_end, qtype, qclass = parse_question(data)
        except WireError:
            return DROP
        if self.query_counter is not None:
            self._count_query(data, qname_end, qtype, qclass, addr, fe, transport, udp, now)
        pool = self.default_pool
        flags = (data[2] << 8) | data[3]
        skip_cache = False
        dq = None
        if self.query_rules or self.dynblocks is not None:
            dq = self._before_pool(data, qname_end, qtype, qclass, addr, local, fe, transport,
                                   udp, now, origin)
            if dq.__class__ is Verdict:
                return dq
            late = self.cache_after_rules
            # (not for DNSCrypt, whose hits count no rcode: the lookup below, local_answer)
            if late is not None and transport is DO53_UDP and left_as_is(dq, data):
                resp = late.lookup_exact(data, True, int(now))
                if resp is not None:      # counted as the hit below (local_answer's UDP case)
                    stats.cache_hits += 1
                    stats.count_rcode(resp[3] & 0x0F)
                    stats.zero_latency_samples(1)
                    return answer(resp, 0, False)
            data = bytes(dq.data)
            skip_cache = dq.skip_cache
            if dq.pool is not None:
                pool = self.reg.pools.get(dq.pool)
                if pool is None:    # dnsdist's getPool() throws: dropped, nothing counted
                    return DROP
        policy = pool.policy or self.reg.policy      # Registry.policy_for, written out
        pdq = dq
        if pdq is None and policy.needs_dq:      # hashed and Lua policies read the query
            pdq = self.question(data, qname_end, qtype, qclass, addr, local, fe, transport, udp,
                                now, origin)
        server = policy.fn(pool.servers, pdq)      # ServerPolicy.__call__, one frame fewer
        xfr = not udp and qtype in XFR_TYPES      # as 1.7.3: transfers skip the cache
        cache = None if skip_cache or xfr else pool.cache
        ecs = 0
        zero = None
        # as 1.7.3, with no server the pool's setECS() stands for its useClientSubnet
        if (server.use_ecs if server is not None else pool.ecs) and (pdq is None or pdq.use_ecs):
            # facts §10.3: ECS after the policy, before the cache (the key holds the subnet)
            data, ecs, zero = self._add_ecs(data, addr, pdq, cache, server)
            if data is None:
                return DROP
        cache_key = None
        if cache is not None:
            # as 1.7.3: a UDP client's key is the UDP one, whatever carries the query on
            key_udp = udp and not (transport is DOH and server is not None
                                   and server.tcp_only)
            stale = 0 if server is not None else self.settings.stale_cache_entries_ttl
            if zero is None and transport is DOH:
                resp, cache_key = doh_lookup(cache, data, qname_end, key_udp, now, stale, not ecs)
            elif zero is None:
                resp, cache_key = cache.lookup(data, qname_end, key_udp, now, stale, exact=not ecs)
            else:
                resp, cache_key, zero = zero_scope_lookup(cache, zero, data, qname_end, key_udp,
                                                          now, stale, ecs > 0)
            if resp is not None:
                return self._cache_hit(resp, dq, qname_end, qtype, qclass, addr, fe, transport,
                                       udp, now)
            stats.cache_misses += 1
            if cache.second_level is not None and cache_key is not None:
                # pydist.cacheOptions' shared level: asked before a backend (cache_ext.py)
                return self._second_level(cache, cache_key, key_udp, ecs, data, addr, fe,
                                          transport, udp, dq, pdq, server, zero, qname_end,
                                          qtype, qclass, flags, skip_cache)
        return self._forward(data, addr, fe, transport, udp, now, dq, pdq, server, cache,
                             cache_key, ecs, zero, qname_end, qtype, qclass, flags, skip_cache)

    def _cache_hit(self, resp: bytes, dq: DNSQuestion | None, qname_end: int, qtype: int,
                   qclass: int, addr: Any, fe: Any, transport: Transport, udp: bool,
                   now: float) -> Verdict:
        """An answer from the cache: the cache-hit rules, counted, to send."""
        delay = dq.delay_ms if dq is not None and udp else 0
        if self.cachehit_rules:
            resp, delay, _ = apply_response_rules(
                self.cachehit_rules, resp, qname_end, qtype, qclass, addr, fe, not udp,
                now, dq.tags if dq is not None else None, delay,
                query=(dq.unique_id, now) if dq is not None else None)
            if resp is None:
                return DROP
        self.stats.cache_hits += 1
        # as 1.7.3: cache hits (UDP or TCP) are not counted in the frontend's responses
        return self.local_answer(resp, addr, fe, transport, ring=False, delay_ms=delay,
                                 fe_count=False)

    def _second_level(self, cache: Any, cache_key: Any, key_udp: bool, ecs: int, data: bytes,
                      addr: Any, fe: Any, transport: Transport, udp: bool,
                      dq: DNSQuestion | None, pdq: DNSQuestion | None, server: Any, zero: Any,
                      qname_end: int, qtype: int, qclass: int, flags: int,
                      skip_cache: bool) -> Deferred:
        """A local miss on a cache with a shared level: Redis is asked within its budget; an
        answer found there is stored locally and served as a hit, else the query goes on.
        The verdict comes later: the frontend is handed it through the Deferred."""
        deferred = Deferred()

        def found(entry: Any) -> None:
            now = time.time()
            if entry is not None and cache.bring_in(key_udp, cache_key, ident, entry, now):
                resp, _ = cache.lookup(data, qname_end, key_udp, now, 0, exact=not ecs)
                if resp is not None:    # a hit of the cache's second level, not a miss
                    self.stats.cache_misses -= 1
                    cache.misses -= 1
                    return deferred.resolve(self._cache_hit(resp, dq, qname_end, qtype, qclass,
                                                            addr, fe, transport, udp, now))
            deferred.resolve(self._forward(data, addr, fe, transport, udp, now, dq, pdq, server,
                                           cache, cache_key, ecs, zero, qname_end, qtype, qclass,
                                           flags, skip_cache))
        ident = cache.ident_for(data, qname_end)
        cache.second_level.lookup(key_udp, cache_key, ident, found)
        return deferred

    def _forward(self, data: bytes, addr: Any, fe: Any, transport: Transport, udp: bool,
                 now: float, dq: DNSQuestion | None, pdq: DNSQuestion | None, server: Any,
                 cache: Any, cache_key: Any, ecs: int, zero: Any, qname_end: int, qtype: int,
                 qclass: int, flags: int, skip_cache: bool) -> Verdict | InFlight:
        """After the cache: to the server the policy picked (or no-policy's outcome)."""
        stats = self.stats
        xfr = not udp and qtype in XFR_TYPES      # a zone transfer: relayed message by message
        if server is None:
            stats.no_policy += 1
            if self.settings.servfail_when_no_server:
                stats.frontend_servfail += 1
                ans = self_answer(data, qname_end, 2, self.settings.add_edns_to_self_generated,
                                  self.settings.payload_size_self_generated)
                # as 1.7.3: this SERVFAIL is not counted in the frontend's responses
                return self.local_answer(ans, addr, fe, transport, count=False, fe_count=False)
            return DROP
        qps = server.qps
        if not qps.passthrough:           # firstAvailable's token, spent on a query sent
            qps.check()
        if dq is None and not self.response_rules:
            # InFlight.__init__ written out (no frame of its own): every miss makes one
            state = _new_object(InFlight)
            state.orig_id = data[:2]
            state.client = addr
            state.frontend = fe
            state.question = data[12:qname_end + 4]
            state.sent = now
            state.sent_tick = self.tick
            state.cache = cache
            state.cache_key = cache_key
            state.query = data
            state.qname_end = qname_end
            state.flags = flags
            state.transport = transport
            state.sink = state.out = None
        else:
            state = self.rule_in_flight(data, addr, fe, now, cache, cache_key, qname_end, qtype,
                                        qclass, flags, transport, dq, udp, skip_cache)
        if server.use_ecs:
            state.ecs = ecs if ecs > 0 else 0
            state.zero = zero
        if server.xpf_code:                 # after the cache: its key never holds the record
            data = add_xpf(data, server.xpf_code, not udp, addr, (fe.decl.host, fe.decl.port))
        proxy = None
        if server.use_proxy:
            # as dnsdist 1.7.3, a DoH query's header says TCP (it came over a stream), and one
            # whose X-Forwarded-For client is not of the listener's family (v4-mapped v6
            # included) cannot be given one: no downstream (DoH answers 502)
            doh = transport is DOH
            if doh and (":" in addr[0]) != (":" in proxy_destination(fe, pdq)[0]):
                return NO_DOWNSTREAM
            proxy = header_for_query(addr, fe, not udp or doh, pdq)
        # the FORWARD verdict is the in-flight state itself, told where and what to send
        state.server, state.wire, state.proxy, state.xfr = server, data, proxy, xfr
        return state

    def tcp_client_gone(self, peer: Any) -> None:
        """A TCP client closed: so do the proxied backend connections it owned (dnsdist 1.7.3)."""
        for server in self.proxied_servers:
            if server.tcp_pool is not None:
                server.tcp_pool.drop_owner(peer)

    def local_answer(self, resp: bytes, addr: Any, fe: Any, transport: Transport,
                     count: bool = True, ring: bool = True, delay_ms: int = 0,
                     fe_count: bool = True, sample: bool = True) -> Verdict:
        """An answer that did not come from a backend, counted; cache hits stay out of the
        ring (and are not `generated`: DoH strips its added OPT from them)."""
        if count and transport not in DNSCRYPT:   # as 1.7.3: read once encrypted, never counted
            self.stats.count_rcode(resp[3] & 0x0F)
        if sample:
            self.stats.zero_latency_samples(1)
            if transport is DOT:
                self.stats.dot_latency_sample(0.0)
        if fe_count:
            fe.responses += 1
        if ring:
            self.rings.responses.append((time.time(), addr, resp, 0, None, fe.socket_transport))
        return answer(resp, delay_ms, ring)

    # ---- the response step: what to send for a backend's answer (the backend layer,
    # pydist/backend/dispatch.py, hands it to the frontend that forwarded the query)
    def udp_response_step(self, server: Any, data: bytes, st: InFlight, backend_flags: int = -1,
                          now: float = 0.0) -> tuple[bytes | None, int]:
        """A UDP backend answer matched its slot: restore ID and flags, rules, cache; the bytes
        to send (None: dropped) and the delay asked by the rules (ms, UDP clients).
        `backend_flags` >= 0: the backend layer already put the client's ID and flags back in
        its receive buffer, these were the backend's (what the response rules see: dnsdist
        restores RD/CD after them). `now`: when the answer was read (the backend layer reads
        the clock once per batch), 0 to read it here."""
        if not now:
            now = time.time()
        if data[2] & 0x02 and self.settings.truncate_tc:    # before the rules and the cache
            data = truncate_tc(data, st.qname_end, self.settings.add_edns_to_self_generated)
        if backend_flags >= 0:
            counted = resp = data
            if self.response_rules:
                data = data[:2] + backend_flags.to_bytes(2, "big") + data[4:]
        else:
            f = st.flags          # _restore() written out: this runs for every UDP answer
            counted = resp = st.orig_id + bytes(((data[2] & 0xFE) | ((f >> 8) & 0x01),
                                                 (data[3] & 0xEF) | (f & 0x10))) + data[4:]
        usec = (now - st.sent) * 1e6
        server.latency_usec = server.latency_usec * 127 / 128 + usec / 128
        delay, skip = 0, False
        if self.response_rules:
            resp, delay, skip = self._response_rules(server, data, st, now)
            if resp is None:
                return None, 0    # no latency sample for a dropped answer (as dnsdist 1.7.3)
        elif st.__class__ is not InFlight:      # a query rule's DelayAction (RuleInFlight)
            delay = st.delay_ms
        if server.use_ecs:
            resp = ecs_response(resp, st)
            if resp is None:
                return None, 0
        if st.transport is not DOH:
            self.stats.latency_sample(usec)     # as 1.7.3: DoH answers are no sample
        self._account(server, resp, st, now, usec, True, counted[3] & 0x0F, not skip)
        return resp, delay

    def tcp_response_step(self, server: Any, data: bytes | None, st: InFlight) -> bytes | None:
        """A TCP backend answer (or None when the backend gave up): the bytes to send, None
        to fail the query. One that is not an answer to the question asked is dropped as
        over UDP; dnsdist 1.7.3 then closes the client's TCP connection."""
        if data is None or not answer_matches(data, st.question,
                                              self.settings.allow_empty_response, self.stats):
            return None
        now = time.time()
        resp = self._restore(data, st)
        usec = (now - st.sent) * 1e6
        udp_client = st.transport in DATAGRAM
        if udp_client:   # as 1.7.3 counts a UDP query's answer over TCP, DoT or DoH: as UDP's
            server.latency_usec = server.latency_usec * 127 / 128 + usec / 128
            self.stats.latency_sample(usec)
        else:
            server.latency_usec_tcp = server.latency_usec_tcp * 127 / 128 + usec / 128
        counted = resp
        skip = False
        if self.response_rules:
            resp, _, skip = self._response_rules(server, data, st, now)
            if resp is None:
                return None
        if server.use_ecs:
            resp = ecs_response(resp, st)
            if resp is None:
                return None
        # ... but not in the server's responses, nor a DoH client's (observed likewise)
        self._account(server, resp, st, now, usec, udp_client, counted[3] & 0x0F, not skip,
                      not udp_client and st.transport is not DOH)
        if st.transport is DOT:
            self.stats.dot_latency_sample(usec)
        if udp_client:    # a UDP client behind a TCP-only backend
            edns = edns_info(st.query, st.qname_end)
            limit = max(512, edns[0]) if edns else 512
            if len(resp) > limit:
                resp = truncate_for_udp(resp, st.qname_end)
        return resp

    def _account(self, server: Any, resp: bytes, st: InFlight, now: float, usec: float,
                 udp_key: bool, rcode: int = -1, insert: bool = True,
                 server_counted: bool = True) -> None:
        """What every relayed backend answer counts and feeds, whatever its transport; the
        rcode counted is the backend's, before response rules (as dnsdist 1.7.3)."""
        if server_counted:
            server.responses += 1
        stats = self.stats
        stats.responses += 1
        if rcode < 0:
            rcode = resp[3] & 0x0F
        cache = st.cache
        if cache is not None and insert:
            # the backend layer checked the answer's question: unless rules or ECS rewrote
            # the answer since, its records start where the query's question ends
            entry = cache.insert(st.cache_key, st.query, st.qname_end, udp_key, resp, now,
                                 st.temp_failure_ttl,   # SetTempFailureCacheTTL (RuleInFlight)
                                 not self.response_rules and not server.use_ecs)
            if entry is not None and self.rule_memo is not None:
                self.note_entry(self.rule_memo, entry, st)
        if rcode == 0:        # Stats.count_rcode written out
            stats.frontend_noerror += 1
        elif rcode == 3:
            stats.frontend_nxdomain += 1
        elif rcode == 2:
            stats.servfail_responses += 1
            stats.frontend_servfail += 1
        fe = st.frontend
        fe.responses += 1
        self.rings.responses.append((now, st.client, resp, usec, server.address_str,
                                     fe.socket_transport))

    @staticmethod
    def _restore(data: bytes, st: InFlight) -> bytes:
        """Client's ID, and the client's RD and CD bits, put back as dnsdist does."""
        f = st.flags
        b2 = (data[2] & 0xFE) | ((f >> 8) & 0x01)
        b3 = (data[3] & 0xEF) | (f & 0x10)
        return st.orig_id + bytes((b2, b3)) + data[4:]

    def timed_out(self, st: InFlight, server: Any = None) -> None:
        """A UDP query that never got its answer: into the ring as dnsdist's "T.O"."""
        self.rings.responses.append((time.time(), st.client, st.query, -1,
                                     server.address_str if server is not None else None,
                                     st.frontend.socket_transport))


def doh_lookup(cache: Any, data: bytes, qname_end: int, key_udp: bool, now: float, stale: int,
               exact: bool) -> tuple[Any, Any]:
    """dnsdist 1.7.3 on a DoH query: the TCP key first, then (the query goes to the backend
    over UDP) the UDP key, whose answer serves only without TC; the pool counts each lookup."""
    resp, key = cache.lookup(data, qname_end, False, now, stale, exact=exact)
    if resp is not None or not key_udp:
        return resp, key
    resp, key = cache.lookup(data, qname_end, True, now, stale, exact=exact)
    if resp is not None and resp[2] & 0x02:
        return None, key
    return resp, key
