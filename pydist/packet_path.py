"""One query's journey, written down once: ACL -> checks -> rings -> pool -> cache -> policy ->
backend, and the response's: cache insert -> client. Frontends only do the I/O around it."""
from __future__ import annotations

import socket
import time
from typing import Any, Callable

from pydist.backend.udp import InFlight
from pydist.dns.ecs import ecs_defaults, ecs_response, query_for_backend, zero_scope_lookup
from pydist.dns.proxyprotocol import header_for_query
from pydist.dns.synth import notimp_for_empty, self_answer, truncate_for_udp
from pydist.dns.wire import WireError, edns_info, parse_question
from pydist.dnsquestion import DNSQuestion
from pydist.rules.chain import DONE, RULES, apply_dynblocks, apply_query_rules
from pydist.rules.responses import RuleInFlight, apply_response_rules

UDP_BUDGET = 256          # datagrams handled per wake-up before others get the loop
MAX_UDP_QUERY = 4368      # dnsdist 1.7.3 reads 4096 + 272 (DNSCrypt room) bytes; larger: dropped


class PacketPath:
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
        rules = self.reg.rules
        self.query_rules = rules["query"].rules
        self.response_rules = rules["response"].rules
        self.cachehit_rules = rules["cachehit"].rules
        self.selfanswered_rules = rules["selfanswered"].rules
        self.dynblocks = self.reg.dynblocks if self.reg.dynblocks.active else None
        self.proxied_servers = tuple(s for s in self.reg.servers if s.use_proxy)
        self.fast_cache = pool.cache if (
            pool.cache is not None and policy.side_effect_free and not self.query_rules
            and not self.cachehit_rules and self.dynblocks is None
            and not (policy.name == "firstAvailable" and any(not s.qps.passthrough for s in pool.servers))
            and not any(s.tcp_only or s.use_ecs for s in pool.servers)
            and self.settings.stale_cache_entries_ttl == 0) else None

    # ---- UDP frontend: drained, not called back per datagram
    def udp_readable(self, sock: socket.socket, fe: Any) -> None:
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        stats = self.stats
        acl = self.reg.acl
        acl_memo = acl.memo
        qring = self.rings.queries.append
        cache = self.fast_cache
        now = time.time()
        now_s = int(now)
        hits = 0
        queries = 0
        for _ in range(UDP_BUDGET):
            try:
                data, addr = recvfrom(MAX_UDP_QUERY + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
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
                resp = cache.lookup_exact(data, True, now_s)
                if resp is not None:
                    if data[2] & 0x01:
                        stats.rdqueries += 1
                    try:
                        sendto(resp, addr)
                    except OSError:
                        pass
                    hits += 1
                    rcode = resp[3] & 0x0F
                    if rcode == 0:
                        stats.frontend_noerror += 1
                    else:
                        stats.count_rcode(rcode)
                    continue
            self.process(data, addr, fe, sock, True, now, None)
        if queries:
            stats.queries += queries
            fe.queries += queries
            if hits:  # as 1.7.3: UDP cache hits are not counted in the frontend's responses
                stats.cache_hits += hits
                stats.zero_latency_samples(hits)

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
            return self._answer(notimp_for_empty(data), addr, fe, fe_sock, reply)
        try:
            qname_end, qtype, qclass = parse_question(data)
        except WireError:
            return self._drop(reply)
        pool = self.default_pool
        flags = (data[2] << 8) | data[3]
        skip_cache = False
        dq = None
        if self.query_rules or self.dynblocks is not None:
            dq = self._before_pool(data, qname_end, qtype, qclass, addr, fe, fe_sock, udp, now,
                                   reply)
            if dq is None:
                return
            data = bytes(dq.data)
            skip_cache = dq.skip_cache
            if dq.pool is not None:
                pool = self.reg.get_pool(dq.pool)
        policy = self.reg.policy_for(pool)
        if dq is None and policy.needs_dq:       # hashed and Lua policies read the query
            dq = DNSQuestion(data, qname_end, qtype, qclass, addr, fe, not udp, now)
            ecs_defaults(dq, self.settings)
        server = policy(pool.servers, dq)
        cache = None if skip_cache else pool.cache
        ecs = 0
        zero = None
        if server is not None and server.use_ecs:   # facts §10.3: after the policy, before the cache
            if dq is None or dq.use_ecs:
                zero = data
                data, ecs = query_for_backend(data, addr, dq, self.settings)
                if data is None:
                    return self._drop(reply)
                ecs = ecs or -1                      # -1: ECS present, nothing to strip
                if cache is None or not cache.parse_ecs or server.options["disableZeroScope"]:
                    zero = None
        cache_key = None
        if cache is not None:
            key_udp = udp and not (server is not None and server.tcp_only)
            stale = 0 if server is not None else self.settings.stale_cache_entries_ttl
            if zero is None:
                resp, cache_key = cache.lookup(data, qname_end, key_udp, now, stale, exact=not ecs)
            else:
                resp, cache_key, zero = zero_scope_lookup(cache, zero, data, qname_end, key_udp,
                                                          now, stale, ecs > 0)
            if resp is not None:
                delay = dq.delay_ms if dq is not None and udp else 0
                if self.cachehit_rules:
                    resp, delay, _ = apply_response_rules(
                        self.cachehit_rules, resp, qname_end, qtype, qclass, addr, fe, not udp,
                        now, dq.tags if dq is not None else None, delay)
                    if resp is None:
                        return self._drop(reply)
                stats.cache_hits += 1
                return self._answer(resp, addr, fe, fe_sock, reply, ring=False, delay_ms=delay,
                                    fe_count=reply is not None)
            stats.cache_misses += 1
        if server is None:
            stats.no_policy += 1
            if self.settings.servfail_when_no_server:
                stats.frontend_servfail += 1
                ans = self_answer(data, qname_end, 2, self.settings.add_edns_to_self_generated,
                                  self.settings.payload_size_self_generated)
                return self._answer(ans, addr, fe, fe_sock, reply, count=False)
            return self._drop(reply)
        if dq is None and not self.response_rules:
            state = InFlight(data[:2], addr, fe_sock, fe, data[12:qname_end + 4], now, self.tick,
                             cache, cache_key, data, qname_end, flags, reply)
        else:
            state = RuleInFlight(data[:2], addr, fe_sock, fe, data[12:qname_end + 4], now,
                                 self.tick, cache, cache_key, data, qname_end, flags, reply)
            state.set_rule_state(qtype, qclass, dq.tags if dq is not None else None,
                                 dq.delay_ms if dq is not None else 0, not udp)
        if server.use_ecs:
            state.ecs = ecs if ecs > 0 else 0
            state.zero = zero
        if server.use_proxy:
            return self._send_proxied(server, data, state, addr, fe, udp, dq, reply)
        if udp and not server.tcp_only:
            if server.udp is None or not server.udp.send(data, state):
                return self._drop(reply)
            return
        if server.tcp_pool is None:
            return self._drop(reply)
        server.tcp_pool.query(data, lambda resp, s=server, st=state: self.tcp_backend_response(s, resp, st))

    def _send_proxied(self, server: Any, data: bytes, state: InFlight, addr: Any, fe: Any,
                      udp: bool, dq: DNSQuestion | None, reply: Callable | None) -> None:
        """useProxyProtocol: the header before each UDP datagram, or at the start of a TCP
        connection that only this TCP client uses."""
        proxy = header_for_query(addr, fe, not udp, dq)
        if udp and not server.tcp_only:
            if server.udp is None or not server.udp.send(data, state, proxy):
                return self._drop(reply)
            return
        if server.tcp_pool is None:
            return self._drop(reply)
        server.tcp_pool.query(data, lambda resp, s=server, st=state: self.tcp_backend_response(s, resp, st),
                              proxy, None if udp else addr)

    def tcp_client_gone(self, peer: Any) -> None:
        """A TCP client closed: so do the proxied backend connections it owned (dnsdist 1.7.3)."""
        for server in self.proxied_servers:
            if server.tcp_pool is not None:
                server.tcp_pool.drop_owner(peer)

    def _before_pool(self, data: bytes, qname_end: int, qtype: int, qclass: int, addr: Any,
                     fe: Any, fe_sock: Any, udp: bool, now: float,
                     reply: Callable | None) -> DNSQuestion | None:
        """Dynamic blocks, then the query rules (facts §10.1): the DNSQuestion to route on, or
        None when the query was dropped or answered."""
        dq = DNSQuestion(data, qname_end, qtype, qclass, addr, fe, not udp, now)
        ecs_defaults(dq, self.settings)
        step = RULES
        if self.dynblocks is not None:
            step = apply_dynblocks(self, self.dynblocks, dq, addr, fe, fe_sock, reply)
            if step == DONE:
                return None
        if step == RULES and self.query_rules:
            if not apply_query_rules(self, self.query_rules, dq, addr, fe, fe_sock, reply):
                return None
        return dq

    def _drop(self, reply: Callable | None) -> None:
        if reply is not None:
            reply(None)

    def _answer(self, resp: bytes, addr: Any, fe: Any, fe_sock: Any, reply: Callable | None,
                count: bool = True, ring: bool = True, delay_ms: int = 0,
                fe_count: bool = True) -> None:
        """Send an answer that did not come from a backend; cache hits stay out of the ring."""
        if count:
            self.stats.count_rcode(resp[3] & 0x0F)
        self.stats.zero_latency_samples(1)
        if fe_count:
            fe.responses += 1
        if ring:
            self.rings.responses.append((time.time(), addr, resp, 0, None, fe.proto))
        if reply is not None:
            reply(resp)
        elif delay_ms > 0:
            self.loop.call_later(delay_ms / 1000.0, _sendto, fe_sock, resp, addr)
        else:
            _sendto(fe_sock, resp, addr)

    # ---- responses
    def udp_backend_response(self, server: Any, data: bytes, st: InFlight) -> None:
        """A UDP backend answer matched its slot: restore ID and flags, cache, relay."""
        now = time.time()
        resp = self._restore(data, st)
        usec = (now - st.sent) * 1e6
        server.latency_usec = server.latency_usec * 127 / 128 + usec / 128
        self.stats.latency_sample(usec)
        delay, skip = 0, False
        counted = resp
        if self.response_rules:
            resp, delay, skip = self._response_rules(server, resp, st, now)
            if resp is None:
                return
        if server.use_ecs:
            resp = ecs_response(resp, st)
        self._account(server, resp, st, now, usec, True, counted[3] & 0x0F, not skip)
        if st.tcp_reply is not None:
            st.tcp_reply(resp)
        elif delay > 0:
            self.loop.call_later(delay / 1000.0, _sendto, st.fe_sock, resp, st.client)
        else:
            _sendto(st.fe_sock, resp, st.client)

    def tcp_backend_response(self, server: Any, data: bytes | None, st: InFlight) -> None:
        """A TCP backend answer (or None when the backend gave up)."""
        if data is None or len(data) < 12:
            if data is not None:
                self.stats.noncompliant_responses += 1
            if st.tcp_reply is not None:
                st.tcp_reply(None)
            return
        now = time.time()
        resp = self._restore(data, st)
        usec = (now - st.sent) * 1e6
        server.latency_usec_tcp = server.latency_usec_tcp * 127 / 128 + usec / 128
        counted = resp
        skip = False
        if self.response_rules:
            resp, _, skip = self._response_rules(server, resp, st, now)
            if resp is None:
                if st.tcp_reply is not None:
                    st.tcp_reply(None)
                return
        if server.use_ecs:
            resp = ecs_response(resp, st)
        self._account(server, resp, st, now, usec, False, counted[3] & 0x0F, not skip)
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

    def _response_rules(self, server: Any, resp: bytes, st: Any,
                        now: float) -> tuple[bytes | None, int, bool]:
        """The response chain on a backend answer: (answer or None when dropped, UDP delay,
        skip the cache); the client's flags are restored after it."""
        try:
            qname_end, qtype, qclass = parse_question(resp)
        except WireError:
            return resp, 0, False
        tags = getattr(st, "tags", None)
        delay = getattr(st, "delay_ms", 0)
        out, delay, skip = apply_response_rules(
            self.response_rules, resp, qname_end, qtype, qclass, st.client, st.frontend,
            st.tcp_reply is not None, now, tags, delay, server)
        if out is None:
            return None, 0, True
        return self._restore(out, st), delay, skip

    def _account(self, server: Any, resp: bytes, st: InFlight, now: float, usec: float,
                 udp_key: bool, rcode: int = -1, insert: bool = True) -> None:
        """What every relayed backend answer counts and feeds, whatever its transport; the
        rcode counted is the backend's, before response rules (as dnsdist 1.7.3)."""
        server.responses += 1
        stats = self.stats
        stats.responses += 1
        if rcode < 0:
            rcode = resp[3] & 0x0F
        if rcode == 2:
            stats.servfail_responses += 1
        if st.cache is not None and insert:
            st.cache.insert(st.cache_key, st.query, st.qname_end, udp_key, resp, now)
        stats.count_rcode(rcode)
        st.frontend.responses += 1
        self.rings.responses.append((now, st.client, resp, usec, server.address_str,
                                    st.frontend.proto))

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
            st.tcp_reply(None)


def _sendto(sock: Any, resp: bytes, addr: Any) -> None:
    try:
        sock.sendto(resp, addr)
    except OSError:
        pass
