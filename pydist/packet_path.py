"""One query's journey, written down once: ACL -> checks -> rings -> pool -> cache -> policy ->
backend, and the response's: cache insert -> client. Frontends only do the I/O around it."""
from __future__ import annotations

import socket
import time
from typing import Any, Callable

from pydist.backend.udp import InFlight, answer_matches
from pydist.backend.xfr import XFR_TYPES
from pydist.dns.ecs import ecs_defaults, ecs_response, zero_scope_lookup
from pydist.dns.proxyprotocol import header_for_query, proxy_destination
from pydist.dns.synth import notimp_for_empty, self_answer, truncate_for_udp, truncate_tc
from pydist.dns.wire import WireError, edns_info, parse_question
from pydist.dns.xpf import add_xpf
from pydist.dnsquestion import DNSQuestion
from pydist.frontend.pktinfo import ANCILLARY_SIZE, LocalUDPSocket, destination
from pydist.frontend.proxied import ProxiedUDPSocket, read_header
from pydist.rule_path import RulePath, connection_sni, left_as_is, query_origin
from pydist.rule_path import sendto as _sendto
from pydist.rules.responses import apply_response_rules

UDP_BUDGET = 256          # datagrams handled per wake-up before others get the loop
MAX_UDP_QUERY = 4368      # dnsdist 1.7.3 reads 4096 + 272 (DNSCrypt room) bytes; larger: dropped


class PacketPath(RulePath):
    """Holds the hot-path references so the drain loop reads locals, not registry lookups."""

    def __init__(self, registry: Any, loop: Any) -> None:
        self.reg = registry
        self.loop = loop
        self.stats = registry.stats
        self.settings = registry.settings
        self.rings = registry.rings
        self.tick = 0
        self.default_pool = registry.get_pool("")
        self.refresh()

    def refresh(self) -> None:
        """Recompute what the fast path may skip; called when the config changes at runtime."""
        pool = self.default_pool
        policy = self.reg.policy_for(pool)
        rules_allow_fast_path = self.refresh_rules()
        self.proxied_servers = tuple(s for s in self.reg.servers if s.use_proxy)
        self.proxy_acl = self.reg.proxy_acl if self.reg.proxy_acl.to_strings() else None
        self.origin_info = self.proxy_acl is not None or any(
            f.pktinfo for f in self.reg.frontends)
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

    # ---- UDP frontend: drained, not called back per datagram
    def udp_readable(self, sock: socket.socket, fe: Any, pktinfo: bool = False) -> None:
        """Drain one listener. `pktinfo`: a wildcard listener, whose datagrams are read with
        their destination address so each answer leaves from it (pydist/frontend/pktinfo.py)."""
        recvfrom = sock.recvfrom
        recvmsg = sock.recvmsg if pktinfo else None
        out = sock
        stats = self.stats
        acl = self.reg.acl
        acl_memo = acl.memo
        qring = self.rings.queries.append
        cache = self.fast_cache
        memo = self.rule_memo
        blocks = self.dynblocks
        proxy_acl = self.proxy_acl
        now = time.time()
        now_s = int(now)
        hits = 0
        queries = 0
        for _ in range(UDP_BUDGET):
            try:
                if pktinfo:
                    data, anc, _, addr = recvmsg(MAX_UDP_QUERY + 1, ANCILLARY_SIZE)
                    local = destination(anc, fe.decl.port)
                    out = sock if local is None else LocalUDPSocket(sock, *local)
                else:
                    data, addr = recvfrom(MAX_UDP_QUERY + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if proxy_acl is not None and proxy_acl.match(addr[0]):
                self.proxied_udp(data, addr, fe, out, now)
                continue
            n = len(data)
            if n < 12 or n > MAX_UDP_QUERY:
                stats.noncompliant_queries += 1
                continue
            ok = acl_memo.get(addr[0])
            if ok is None:
                ok = acl.match(addr[0])
            if not ok:
                stats.acl_drops += 1
                continue
            queries += 1
            if data[2] & 0x80:
                stats.noncompliant_queries += 1
                continue
            qring((now, addr, data, 0))
            if cache is not None:
                if blocks is not None and blocks.may_block(addr[0], now, addr[1]):
                    resp = None           # a dynamic block may apply: the full path decides
                elif memo is not None:    # a pure chain: its remembered verdict, counted
                    matched = memo.get(data[2:])
                    resp = None if matched is None else cache.lookup_exact(data, True, now_s)
                    if resp is not None:
                        for r in matched:
                            r.matches += 1
                else:
                    resp = cache.lookup_exact(data, True, now_s)
                if resp is not None:
                    if data[2] & 0x01:
                        stats.rdqueries += 1
                    try:
                        out.sendto(resp, addr)
                    except OSError:
                        pass
                    hits += 1
                    rcode = resp[3] & 0x0F
                    if rcode == 0:
                        stats.frontend_noerror += 1
                    else:
                        stats.count_rcode(rcode)
                    continue
            if queries:   # the rules may read getStatisticsCounters(): this query counts
                stats.queries += queries
                fe.queries += queries
                queries = 0
            self.process(data, addr, fe, out, True, now, None)
        if queries:
            stats.queries += queries
            fe.queries += queries
            if hits:  # as 1.7.3: UDP cache hits are not counted in the frontend's responses
                stats.cache_hits += hits
                stats.zero_latency_samples(hits)

    def proxied_udp(self, data: bytes, proxy: Any, fe: Any, sock: Any, now: float) -> None:
        """A datagram from a setProxyProtocolACL source: a query from the proxied client,
        answered to the proxy."""
        got = self.read_proxied(data, proxy, fe, sock)
        if got is None:
            return
        query, client, out = got
        if len(query) > MAX_UDP_QUERY or query[2] & 0x80:
            self.stats.noncompliant_queries += 1
            return
        self.rings.queries.append((now, client, query, 0))
        self.process(query, client, fe, out, True, now, None)

    def read_proxied(self, data: bytes, proxy: Any, fe: Any,
                     sock: Any) -> tuple[bytes, Any, ProxiedUDPSocket] | None:
        """Counted, its header required (see pydist/frontend/proxied.py): (what follows the
        header, the proxied client, the socket that answers through the proxy); None when
        dropped (counted)."""
        stats = self.stats
        stats.queries += 1
        fe.queries += 1
        header = read_header(data, self.settings.proxy_max_payload)
        if not header:
            stats.proxy_protocol_invalid += 1
            return None
        source, destination, values, size = header
        if self.settings.proxy_apply_acl and source and not self.reg.acl.match(source[0]):
            stats.acl_drops += 1
            return None
        if len(data) - size < 12:
            stats.noncompliant_queries += 1
            return None
        return data[size:], source or proxy, ProxiedUDPSocket(sock, proxy, values, destination)

    def _count_query(self, data: bytes, qname_end: int, qtype: int, qclass: int, addr: Any,
                     fe: Any, udp: bool, now: float) -> None:
        """setQueryCount(true): counted before the rules, under the name or a filter's key."""
        dq = DNSQuestion(data, qname_end, qtype, qclass, addr, fe, not udp, now)
        try:
            self.query_counter.count(str(dq.qname).rstrip(".") or ".", lambda: dq)
        except Exception as e:  # noqa: BLE001 -- a failing Lua filter: said, query not counted
            self._rule_bug(e, "Error in the query count filter, query not counted")

    # ---- the full path, shared by UDP and TCP
    def process(self, data: bytes, addr: Any, fe: Any, fe_sock: Any, udp: bool, now: float,
                reply: Callable[[bytes | None], None] | None) -> None:
        """One query after the ACL and the QR check; answers through fe_sock (UDP) or reply."""
        stats = self.stats
        if data[2] & 0x01:
            stats.rdqueries += 1
        if data[4] == 0 and data[5] == 0:
            stats.empty_queries += 1
            if self.settings.drop_empty_queries:
                return self._drop(reply)
            # as 1.7.3: this NOTIMP is neither a frontend response nor a latency sample
            return self._answer(notimp_for_empty(data), addr, fe, fe_sock, reply, fe_count=False,
                                sample=False)
        try:
            qname_end, qtype, qclass = parse_question(data)
        except WireError:
            return self._drop(reply)
        if self.query_counter is not None:
            self._count_query(data, qname_end, qtype, qclass, addr, fe, udp, now)
        pool = self.default_pool
        flags = (data[2] << 8) | data[3]
        skip_cache = False
        dq = None
        if self.query_rules or self.dynblocks is not None:
            dq = self._before_pool(data, qname_end, qtype, qclass, addr, fe, fe_sock, udp, now,
                                   reply)
            if dq is None:
                return
            late = self.cache_after_rules
            # (not for DNSCrypt, whose hits count no rcode: the lookup below, through _answer)
            if late is not None and reply is None and udp and not fe.is_dnscrypt \
                    and left_as_is(dq, data):
                resp = late.lookup_exact(data, True, int(now))
                if resp is not None:      # counted as the hit below (_answer's UDP case)
                    stats.cache_hits += 1
                    stats.count_rcode(resp[3] & 0x0F)
                    stats.zero_latency_samples(1)
                    return _sendto(fe_sock, resp, addr)
            data = bytes(dq.data)
            skip_cache = dq.skip_cache
            if dq.pool is not None:
                pool = self.reg.pools.get(dq.pool)
                if pool is None:    # dnsdist's getPool() throws: dropped, nothing counted
                    return self._drop(reply)
        policy = pool.policy or self.reg.policy      # Registry.policy_for, written out
        pdq = dq
        if pdq is None and policy.needs_dq:      # hashed and Lua policies read the query
            pdq = DNSQuestion(data, qname_end, qtype, qclass, addr, fe, not udp, now)
            ecs_defaults(pdq, self.settings)
            if pdq.protocol != "Do53 UDP" and pdq.protocol != "Do53 TCP":
                pdq.sni = connection_sni(reply)
                pdq.http = getattr(reply, "http", None)
            if self.origin_info:
                query_origin(pdq, fe_sock, reply)
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
                return self._drop(reply)
        cache_key = None
        if cache is not None:
            # as 1.7.3: a UDP client's key is the UDP one, whatever carries the query on
            key_udp = udp and not (fe.is_doh and server is not None and server.tcp_only)
            stale = 0 if server is not None else self.settings.stale_cache_entries_ttl
            if zero is None and fe.is_doh:
                resp, cache_key = doh_lookup(cache, data, qname_end, key_udp, now, stale, not ecs)
            elif zero is None:
                resp, cache_key = cache.lookup(data, qname_end, key_udp, now, stale, exact=not ecs)
            else:
                resp, cache_key, zero = zero_scope_lookup(cache, zero, data, qname_end, key_udp,
                                                          now, stale, ecs > 0)
            if resp is not None:
                return self._cache_hit(resp, dq, qname_end, qtype, qclass, addr, fe, fe_sock,
                                       udp, now, reply)
            stats.cache_misses += 1
            if cache.second_level is not None and cache_key is not None:
                # pydist.cacheOptions' shared level: asked before a backend (cache_ext.py)
                return self._second_level(cache, cache_key, key_udp, ecs, data, addr, fe,
                                          fe_sock, udp, reply, dq, pdq, server, zero,
                                          qname_end, qtype, qclass, flags, skip_cache)
        self._forward(data, addr, fe, fe_sock, udp, now, reply, dq, pdq, server, cache,
                      cache_key, ecs, zero, qname_end, qtype, qclass, flags, skip_cache)

    def _cache_hit(self, resp: bytearray, dq: DNSQuestion | None, qname_end: int, qtype: int,
                   qclass: int, addr: Any, fe: Any, fe_sock: Any, udp: bool, now: float,
                   reply: Callable | None) -> None:
        """An answer from the cache: the cache-hit rules, counted, sent."""
        delay = dq.delay_ms if dq is not None and udp else 0
        if self.cachehit_rules:
            resp, delay, _ = apply_response_rules(
                self.cachehit_rules, resp, qname_end, qtype, qclass, addr, fe, not udp,
                now, dq.tags if dq is not None else None, delay,
                query=(dq.unique_id, now) if dq is not None else None)
            if resp is None:
                return self._drop(reply)
        self.stats.cache_hits += 1
        # as 1.7.3: cache hits (UDP or TCP) are not counted in the frontend's responses
        return self._answer(resp, addr, fe, fe_sock, reply, ring=False, delay_ms=delay,
                            fe_count=False)

    def _second_level(self, cache: Any, cache_key: Any, key_udp: bool, ecs: int, data: bytes,
                      addr: Any, fe: Any, fe_sock: Any, udp: bool, reply: Callable | None,
                      dq: DNSQuestion | None, pdq: DNSQuestion | None, server: Any, zero: Any,
                      qname_end: int, qtype: int, qclass: int, flags: int,
                      skip_cache: bool) -> None:
        """A local miss on a cache with a shared level: Redis is asked within its budget; an
        answer found there is stored locally and served as a hit, else the query goes on."""
        def found(entry: Any) -> None:
            now = time.time()
            if entry is not None and cache.bring_in(key_udp, cache_key, ident, entry, now):
                resp, _ = cache.lookup(data, qname_end, key_udp, now, 0, exact=not ecs)
                if resp is not None:    # a hit of the cache's second level, not a miss
                    self.stats.cache_misses -= 1
                    cache.misses -= 1
                    return self._cache_hit(resp, dq, qname_end, qtype, qclass, addr, fe,
                                           fe_sock, udp, now, reply)
            self._forward(data, addr, fe, fe_sock, udp, now, reply, dq, pdq, server, cache,
                          cache_key, ecs, zero, qname_end, qtype, qclass, flags, skip_cache)
        ident = cache.ident_for(data, qname_end)
        cache.second_level.lookup(key_udp, cache_key, ident, found)

    def _forward(self, data: bytes, addr: Any, fe: Any, fe_sock: Any, udp: bool, now: float,
                 reply: Callable | None, dq: DNSQuestion | None, pdq: DNSQuestion | None,
                 server: Any, cache: Any, cache_key: Any, ecs: int, zero: Any, qname_end: int,
                 qtype: int, qclass: int, flags: int, skip_cache: bool) -> None:
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
                return self._answer(ans, addr, fe, fe_sock, reply, count=False, fe_count=False)
            return self._drop(reply)
        qps = server.qps
        if not qps.passthrough:           # firstAvailable's token, spent on a query sent
            qps.check()
        if dq is None and not self.response_rules:
            state = InFlight(data[:2], addr, fe_sock, fe, data[12:qname_end + 4], now, self.tick,
                             cache, cache_key, data, qname_end, flags, reply)
        else:
            state = self.rule_in_flight(data, addr, fe_sock, fe, now, cache, cache_key,
                                        qname_end, qtype, qclass, flags, reply, dq, udp,
                                        skip_cache)
        if server.use_ecs:
            state.ecs = ecs if ecs > 0 else 0
            state.zero = zero
        if server.xpf_code:                 # after the cache: its key never holds the record
            data = add_xpf(data, server.xpf_code, not udp, addr, (fe.decl.host, fe.decl.port))
        if server.use_proxy:
            return self._send_proxied(server, data, state, addr, fe, udp, pdq, reply, xfr)
        if udp and not server.tcp_only:
            if server.udp is None or not server.udp.send(data, state):
                return self._drop(reply)
            return
        if server.tcp_pool is None:
            return self._drop(reply)
        self._to_tcp_pool(server, data, state, addr, fe, udp, xfr)

    def _to_tcp_pool(self, server: Any, data: bytes, state: InFlight, addr: Any, fe: Any,
                     udp: bool, xfr: bool, proxy: bytes = b"", owner: Any = None) -> None:
        """Hand the query to the server's TCP, DoT or DoH connections; a DoH server with
        addXForwardedHeaders also gets who asked, and how."""
        done = self._on_tcp_answer(server, state, xfr)
        if server.x_forwarded:
            server.tcp_pool.query(data, done, proxy, owner, forwarded_for(addr, fe, udp))
        else:
            server.tcp_pool.query(data, done, proxy, owner)

    def _on_tcp_answer(self, server: Any, state: InFlight, xfr: bool) -> Callable[..., None]:
        """What the backend's TCP connection calls with the answer (each message of a zone
        transfer, `more` set on all but the last)."""
        if xfr:
            return lambda resp, more=False, st=state: self.tcp_xfr_response(resp, st, more)
        # a transfer asked over UDP (towards a TCP-only backend): its last message only
        return lambda resp, more=False, s=server, st=state: \
            None if more else self.tcp_backend_response(s, resp, st)

    def _send_proxied(self, server: Any, data: bytes, state: InFlight, addr: Any, fe: Any,
                      udp: bool, dq: DNSQuestion | None, reply: Callable | None,
                      xfr: bool) -> None:
        """useProxyProtocol: the header before each UDP datagram, or at the start of a TCP
        connection that only this TCP client uses. As dnsdist 1.7.3, a DoH query's header
        says TCP, and one whose X-Forwarded-For client is not of the listener's family
        (v4-mapped v6 included) cannot be given one: dropped, answered 502."""
        if fe.is_doh and (":" in addr[0]) != (":" in proxy_destination(fe, dq)[0]):
            return reply.timeout()
        proxy = header_for_query(addr, fe, not udp or fe.is_doh, dq)
        if udp and not server.tcp_only:
            if server.udp is None or not server.udp.send(data, state, proxy):
                return self._drop(reply)
            return
        if server.tcp_pool is None:
            return self._drop(reply)
        self._to_tcp_pool(server, data, state, addr, fe, udp, xfr, proxy, None if udp else addr)

    def tcp_client_gone(self, peer: Any) -> None:
        """A TCP client closed: so do the proxied backend connections it owned (dnsdist 1.7.3)."""
        for server in self.proxied_servers:
            if server.tcp_pool is not None:
                server.tcp_pool.drop_owner(peer)

    def _drop(self, reply: Callable | None) -> None:
        if reply is not None:
            reply(None)

    def _answer(self, resp: bytes, addr: Any, fe: Any, fe_sock: Any, reply: Callable | None,
                count: bool = True, ring: bool = True, delay_ms: int = 0,
                fe_count: bool = True, sample: bool = True) -> None:
        """Send an answer that did not come from a backend; cache hits stay out of the ring."""
        if count and not fe.is_dnscrypt:
            self.stats.count_rcode(resp[3] & 0x0F)
        if sample:
            self.stats.zero_latency_samples(1)
            if fe.is_dot:
                self.stats.dot_latency_sample(0.0)
        if fe_count:
            fe.responses += 1
        if ring:
            self.rings.responses.append((time.time(), addr, resp, 0, None, fe.proto))
        if reply is not None:
            if ring and hasattr(reply, "self_answered"):    # DoH: not a cache hit
                reply.self_answered = True
            reply(resp)
        elif delay_ms > 0:
            self.loop.call_later(delay_ms / 1000.0, _sendto, fe_sock, resp, addr)
        else:
            _sendto(fe_sock, resp, addr)

    # ---- responses
    def udp_backend_response(self, server: Any, data: bytes, st: InFlight) -> None:
        """A UDP backend answer matched its slot: restore ID and flags, cache, relay."""
        now = time.time()
        if data[2] & 0x02:
            if self._doh_retry_over_tcp(server, st):
                return
            if self.settings.truncate_tc:                    # before the rules and the cache
                data = truncate_tc(data, st.qname_end, self.settings.add_edns_to_self_generated)
        f = st.flags          # _restore() written out: this runs for every UDP answer
        counted = resp = st.orig_id + bytes(((data[2] & 0xFE) | ((f >> 8) & 0x01),
                                             (data[3] & 0xEF) | (f & 0x10))) + data[4:]
        usec = (now - st.sent) * 1e6
        server.latency_usec = server.latency_usec * 127 / 128 + usec / 128
        delay, skip = 0, False
        if self.response_rules:
            resp, delay, skip = self._response_rules(server, data, st, now)
            if resp is None:
                return            # no latency sample for a dropped answer (as dnsdist 1.7.3)
        elif st.__class__ is not InFlight:      # a query rule's DelayAction (RuleInFlight)
            delay = st.delay_ms
        if server.use_ecs:
            resp = ecs_response(resp, st)
            if resp is None:
                return
        reply = st.tcp_reply
        if reply is None or not hasattr(reply, "self_answered"):
            self.stats.latency_sample(usec)     # as 1.7.3: DoH answers are no sample
        self._account(server, resp, st, now, usec, True, counted[3] & 0x0F, not skip)
        if st.tcp_reply is not None:
            st.tcp_reply(resp)
        elif delay > 0:
            self.loop.call_later(delay / 1000.0, _sendto, st.fe_sock, resp, st.client)
        else:
            try:
                st.fe_sock.sendto(resp, st.client)
            except OSError:
                pass

    def _doh_retry_over_tcp(self, server: Any, st: InFlight) -> bool:
        """A TC=1 answer to a DoH query: as dnsdist 1.7.3, asked again over TCP to the same
        server, and the DoH client gets that answer. False when it is not a DoH query."""
        reply = st.tcp_reply
        if reply is None or not hasattr(reply, "self_answered") or server.tcp_pool is None:
            return False
        proxy = header_for_query(st.client, st.frontend, True, None) if server.use_proxy \
            else b""
        server.tcp_pool.query(st.query, lambda resp, s=server, t=st:
                              self.tcp_backend_response(s, resp, t), proxy, None)
        return True

    def tcp_backend_response(self, server: Any, data: bytes | None, st: InFlight) -> None:
        """A TCP backend answer (or None when the backend gave up). One that is not an answer
        to the question asked is dropped as over UDP; dnsdist 1.7.3 then closes the client's
        TCP connection."""
        if data is None or not answer_matches(data, st.question,
                                              self.settings.allow_empty_response, self.stats):
            if st.tcp_reply is not None:
                st.tcp_reply(None)
            return
        now = time.time()
        resp = self._restore(data, st)
        usec = (now - st.sent) * 1e6
        udp_client = st.tcp_reply is None
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
                if st.tcp_reply is not None:
                    st.tcp_reply(None)
                return
        if server.use_ecs:
            resp = ecs_response(resp, st)
            if resp is None:
                if st.tcp_reply is not None:
                    st.tcp_reply(None)
                return
        # ... but not in the server's responses, nor a DoH client's (observed likewise)
        self._account(server, resp, st, now, usec, udp_client, counted[3] & 0x0F, not skip,
                      not udp_client and not st.frontend.is_doh)
        if st.frontend.is_dot:
            self.stats.dot_latency_sample(usec)
        if st.tcp_reply is None:
            edns = edns_info(st.query, st.qname_end)
            limit = max(512, edns[0]) if edns else 512
            if len(resp) > limit:
                resp = truncate_for_udp(resp, st.qname_end)
            try:
                st.fe_sock.sendto(resp, st.client)
            except OSError:
                pass
        else:
            st.tcp_reply(resp)

    @staticmethod
    def tcp_xfr_response(data: bytes | None, st: InFlight, more: bool = False) -> None:
        """One message of a zone transfer: relayed as it came with the client's ID, as dnsdist
        1.7.3 does (no response rules, no counters, no latency sample, never cached). After
        the last one dnsdist never frees the query's place on the client connection, which it
        then closes (observed): the end of the transfer ends the connection here too."""
        if data is not None:
            st.tcp_reply(st.orig_id + data[2:], True)
        if data is None or not more:
            st.tcp_reply(None)

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
            cache.insert(st.cache_key, st.query, st.qname_end, udp_key, resp, now,
                         getattr(st, "temp_failure_ttl", None))   # SetTempFailureCacheTTL
        if rcode == 0:        # Stats.count_rcode written out
            stats.frontend_noerror += 1
        elif rcode == 3:
            stats.frontend_nxdomain += 1
        elif rcode == 2:
            stats.servfail_responses += 1
            stats.frontend_servfail += 1
        fe = st.frontend
        fe.responses += 1
        self.rings.responses.append((now, st.client, resp, usec, server.address_str, fe.proto))

    @staticmethod
    def _restore(data: bytes, st: InFlight) -> bytes:
        """Client's ID, and the client's RD and CD bits, put back as dnsdist does."""
        f = st.flags
        b2 = (data[2] & 0xFE) | ((f >> 8) & 0x01)
        b3 = (data[3] & 0xEF) | (f & 0x10)
        return st.orig_id + bytes((b2, b3)) + data[4:]

    def udp_timeout(self, st: InFlight, server: Any = None) -> None:
        """A UDP query that never got its answer: into the ring as dnsdist's "T.O"."""
        self.rings.responses.append((time.time(), st.client, st.query, -1,
                                     server.address_str if server is not None else None,
                                     st.frontend.proto))
        if st.tcp_reply is not None:
            timed_out = getattr(st.tcp_reply, "timeout", None)    # DoH answers 502
            if timed_out is not None:
                timed_out()
            else:
                st.tcp_reply(None)



def forwarded_for(addr: Any, fe: Any, udp: bool) -> tuple[str, int, bytes]:
    """x-forwarded-for, -port and -proto of a query, as dnsdist 1.7.3 names its frontends."""
    if fe.is_doh:      # (process() is told udp=True for DoH: its backend path is UDP's)
        proto = b"dns-over-https" if fe.decl.tls is not None else b"dns-over-http"
    elif udp:
        proto = b"dns-over-udp"
    elif fe.decl.kind == "tls":
        proto = b"dns-over-tls"
    else:
        proto = b"dns-over-tcp"
    return str(addr[0]), int(addr[1]), proto


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
