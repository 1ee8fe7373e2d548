"""UDP frontend: a listener's socket drained in batches, exact-bytes cache hits answered in the
drain loop itself (the hot path: no verdict object per hit), every other query through the query
step (pydist/packet_path.py) and its verdict acted on here; the listener is also the sink
through which the backend layer sends the answers of the queries it forwarded."""
from __future__ import annotations

import time
from typing import Any

from pydist.frontend.pktinfo import ANCILLARY_SIZE, LocalUDPSocket, destination
from pydist.frontend.proxied import ProxiedUDPSocket, read_header
from pydist.transport import DO53_UDP
from pydist.verdict import ANSWER, DEFERRED_KIND, FORWARD, QueryOrigin

UDP_BUDGET = 256          # datagrams handled per wake-up before others get the loop
MAX_UDP_QUERY = 4368      # dnsdist 1.7.3 reads 4096 + 272 (DNSCrypt room) bytes; larger: dropped


def sendto(sock: Any, resp: bytes, addr: Any) -> None:
    """An answer to a UDP client; a send error loses only that answer."""
    try:
        sock.sendto(resp, addr)
    except OSError:
        pass


class UDPFrontend:
    """One UDP listener (a ClientState `fe` and its socket)."""

    def __init__(self, path: Any, fe: Any, sock: Any, pktinfo: bool = False) -> None:
        self.path = path
        self.fe = fe
        self.sock = sock
        self.pktinfo = pktinfo
        self.loop = path.loop
        self.dispatch = path.backends

    # ---- the drain loop: drained, not called back per datagram
    def readable(self) -> None:
        """Drain the listener. `pktinfo`: a wildcard listener, whose datagrams are read with
        their destination address so each answer leaves from it (pydist/frontend/pktinfo.py)."""
        path = self.path
        fe = self.fe
        sock = self.sock
        pktinfo = self.pktinfo
        recvfrom = sock.recvfrom
        recvmsg = sock.recvmsg if pktinfo else None
        out = sock
        local = None
        stats = path.stats
        acl = path.reg.acl
        acl_memo = acl.memo
        qring = path.rings.queries.append
        cache = path.fast_cache
        memo = path.rule_memo
        blocks = path.dynblocks
        proxy_acl = path.proxy_acl
        full_path = self.full_path
        do53_udp = DO53_UDP
        now = time.time()
        now_s = int(now)
        hits = 0
        queries = 0
        for _ in range(UDP_BUDGET):
            try:
                if pktinfo:
                    data, anc, _, addr = recvmsg(MAX_UDP_QUERY + 1, ANCILLARY_SIZE)
                    found = destination(anc, fe.decl.port)
                    out, local = (sock, None) if found is None else \
                        (LocalUDPSocket(sock, *found), found[1])
                else:
                    data, addr = recvfrom(MAX_UDP_QUERY + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if proxy_acl is not None and proxy_acl.match(addr[0]):
                self.proxied(data, addr, out, now)
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
            # query intake (PacketPath.count_query/accept_query) written out: counted in
            # one go after the batch
            queries += 1
            if data[2] & 0x80:
                stats.noncompliant_queries += 1
                continue
            qring((now, addr, data, do53_udp))
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
            full_path(data, addr, out, now, local)
        if queries:
            stats.queries += queries
            fe.queries += queries
        if hits:  # as 1.7.3: UDP cache hits are not counted in the frontend's responses
            stats.cache_hits += hits      # (also when a full-path query flushed `queries`)
            stats.zero_latency_samples(hits)

    def full_path(self, data: bytes, addr: Any, out: Any, now: float, local: Any = None,
                  origin: QueryOrigin | None = None) -> None:
        """The query step, and its verdict acted on."""
        v = self.path.query_step(data, addr, local, DO53_UDP, self.fe, now, origin)
        if v.kind == FORWARD:        # the usual miss: no second call
            self.dispatch.forward(v, self, out)
        else:
            self.act(v, addr, out)

    def act(self, v: Any, addr: Any, out: Any) -> None:
        """A verdict: sent (at once or after DelayAction's wait), forwarded (answered later
        through `answer`), waited for (DEFERRED), or nothing (dropped)."""
        kind = v.kind
        if kind == FORWARD:
            self.dispatch.forward(v, self, out)
        elif kind == ANSWER:
            if v.delay_ms > 0:
                self.loop.call_later(v.delay_ms / 1000.0, sendto, out, v.data, addr)
            else:
                sendto(out, v.data, addr)
        elif kind == DEFERRED_KIND:
            v.then(lambda later: self.act(later, addr, out))

    def proxied(self, data: bytes, proxy: Any, sock: Any, now: float) -> None:
        """A datagram from a setProxyProtocolACL source: a query from the proxied client,
        answered to the proxy."""
        got = read_proxied(self.path, data, proxy, self.fe, sock)
        if got is None:
            return
        query, client, out = got
        if len(query) > MAX_UDP_QUERY:
            self.path.stats.noncompliant_queries += 1
            return
        if self.path.accept_query(query, client, self.fe, now):
            self.full_path(query, client, out, now, out.local, QueryOrigin("", None, out.values))

    # ---- the sink of the queries this listener forwarded (pydist/frontend/sink.py)
    def answer(self, st: Any, resp: bytes, delay_ms: int) -> None:
        if delay_ms > 0:
            self.loop.call_later(delay_ms / 1000.0, sendto, st.out, resp, st.client)
        else:
            try:
                st.out.sendto(resp, st.client)
            except OSError:
                pass

    def answer_part(self, st: Any, resp: bytes) -> None:
        """Zone transfers are not relayed over UDP (only their last message: `answer`)."""

    def end(self, st: Any) -> None:
        """Nothing to tell a UDP client."""

    def timed_out(self, st: Any) -> None:
        """Nothing to tell a UDP client."""



def read_proxied(path: Any, data: bytes, proxy: Any, fe: Any,
                 sock: Any) -> tuple[bytes, Any, ProxiedUDPSocket] | None:
    """A datagram from a setProxyProtocolACL source, counted, its header required (see
    pydist/frontend/proxied.py): (what follows the header, the proxied client, the socket
    that answers through the proxy); None when dropped (counted). Both UDP drains use it."""
    stats = path.stats
    path.count_query(fe)
    header = read_header(data, path.settings.proxy_max_payload)
    if not header:
        stats.proxy_protocol_invalid += 1
        return None
    source, dest, values, size = header
    if path.settings.proxy_apply_acl and source and not path.reg.acl.match(source[0]):
        stats.acl_drops += 1
        return None
    if len(data) - size < 12:
        stats.noncompliant_queries += 1
        return None
    return data[size:], source or proxy, ProxiedUDPSocket(sock, proxy, values, dest)
