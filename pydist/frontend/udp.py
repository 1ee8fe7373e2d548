"""UDP frontend: a listener's socket drained in batches, exact-bytes cache hits answered in the
drain loop itself (the hot path: no verdict object per hit), every other query through the query
step (pydist/packet_path.py) and its verdict acted on here; the listener is also the sink
through which the backend layer sends the answers of the queries it forwarded."""
from __future__ import annotations

import time
from typing import Any

from pydist.frontend.pktinfo import ANCILLARY_SIZE, LocalUDPSocket, destination
from pydist.frontend.proxied import ProxiedUDPSocket, read_header
from pydist.net import mmsg
from pydist.transport import DO53_UDP
from pydist.verdict import ANSWER, DEFERRED_KIND, FORWARD, QueryOrigin

UDP_BUDGET = 256          # datagrams handled per wake-up before others get the loop
MAX_UDP_QUERY = 4368      # dnsdist 1.7.3 reads 4096 + 272 (DNSCrypt room) bytes; larger: dropped
RECV_BATCH = 64           # datagrams per recvmmsg
SEND_BATCH = 256          # answers per sendmmsg
HIT_SLOT = 1232           # a drain's cache hits up to this size are copied into send slots
_RD_BIT = bytes(b & 0x01 for b in range(256))     # header byte 2 -> its RD bit
_RCODE = bytes(b & 0x0F for b in range(256))      # header byte 3 -> its rcode


def sendto(sock: Any, resp: bytes, addr: Any) -> None:
    """An answer to a UDP client; a send error loses only that answer."""
    try:
        sock.sendto(resp, addr)
    except OSError:
        pass


class UDPFrontend:
    """One UDP listener (a ClientState `fe` and its socket).

    Batched (pydist/net/mmsg.py: recvmmsg, sendmmsg) unless `batched` is False, the socket
    is not a real one, the platform lacks the calls, or the listener reads each datagram's
    destination (`pktinfo`: its answers carry their own ancillary data). A batched listener
    answers through its raw client address (the `out` of a query is the struct sockaddr
    bytes): every answer of a round (a drain of the listener, or of a backend) is gathered
    and leaves in one sendmmsg."""

    batched = True        # DNSCrypt's listener (frontend/dnscrypt.py) reads one by one

    def __init__(self, path: Any, fe: Any, sock: Any, pktinfo: bool = False,
                 batched: bool | None = None) -> None:
        self.path = path
        self.fe = fe
        self.sock = sock
        self.pktinfo = pktinfo
        self.loop = path.loop
        self.dispatch = path.backends
        if batched is None:
            batched = self.batched and not pktinfo and mmsg.batchable(sock)
        self.rx: mmsg.Receiver | None = None
        self.tx: mmsg.Sender | None = None
        self.hits_tx: mmsg.CopySender | None = None
        self.read = self.read_one_by_one
        if batched:
            self.rx = mmsg.Receiver(sock, RECV_BATCH, MAX_UDP_QUERY + 1, True)
            self.tx = mmsg.Sender(sock, SEND_BATCH, True)
            # one slot per datagram of a drain: a drain's hits always find one
            self.hits_tx = mmsg.CopySender(sock, UDP_BUDGET, HIT_SLOT, self.rx.namelen)
            self.clients = mmsg.AddressMemo()
            self.read = self.read_batch
        self.in_round = False        # draining: the round's end sends what was gathered
        self.flush_due = False       # a send of the gathered answers is scheduled
        self.blocked = False         # the kernel's buffer was full: waiting to write

    # ---- reading: a batch of (query, client, what answers it, local address)
    def read_batch(self, budget: int) -> list[tuple[bytes, Any, Any, Any]]:
        """One recvmmsg: each datagram with its client and, as what answers it, the client's
        raw address (answers gathered for sendmmsg)."""
        rx = self.rx
        lens = rx.recv()   # type: ignore[union-attr]
        buf, names, slot, nlen = rx.buf, rx.namebuf, rx.slot_size, rx.namelen  # type: ignore
        clients = self.clients
        batch = []
        off = noff = 0
        for n in lens:
            raw = names[noff:noff + nlen]
            batch.append((buf[off:off + n], clients[raw], raw, None))
            off += slot
            noff += mmsg.NAME_SIZE
        return batch

    def read_one_by_one(self, budget: int) -> list[tuple[bytes, Any, Any, Any]]:
        """The portable path: recvfrom (recvmsg for `pktinfo`) until empty or `budget`."""
        sock = self.sock
        batch = []
        for _ in range(min(budget, RECV_BATCH)):
            try:
                if self.pktinfo:
                    data, anc, _, addr = sock.recvmsg(MAX_UDP_QUERY + 1, ANCILLARY_SIZE)
                    found = destination(anc, self.fe.decl.port)
                    if found is None:
                        batch.append((data, addr, sock, None))
                    else:
                        batch.append((data, addr, LocalUDPSocket(sock, *found), found[1]))
                else:
                    data, addr = sock.recvfrom(MAX_UDP_QUERY + 1)
                    batch.append((data, addr, sock, None))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
        return batch

    # ---- the drain loop: drained, not called back per datagram
    def readable(self) -> None:
        """Drain the listener, at most UDP_BUDGET datagrams, then send what the round
        gathered. `pktinfo`: a wildcard listener, whose datagrams are read with their
        destination address so each answer leaves from it (pydist/frontend/pktinfo.py)."""
        path = self.path
        fe = self.fe
        read = self.read
        stats = path.stats
        acl = path.reg.acl
        acl_memo = acl.memo
        qring = path.rings.queries.append
        cache = path.fast_cache
        if cache is not None:
            parts = cache.exact_parts(True)
            nparts = len(parts)
        served = 0          # hits served by the written-out exact-level check (see below)
        memo = path.rule_memo
        blocks = path.dynblocks
        proxy_acl = path.proxy_acl
        full_path = self.full_path
        tx = self.tx
        hits_tx = self.hits_tx
        slot = HIT_SLOT
        fits = 0            # the longest answer copied into a send slot (0: none is)
        first = 0           # the round's first send slot (an offset)
        if hits_tx is not None:
            datas_add, dests_add = tx.datas.append, tx.dests.append  # type: ignore[union-attr]
            slots = hits_tx.buf
            lens_add, hit_dests_add = hits_tx.lens.append, hits_tx.dests.append
            # one slot per datagram of the drain; a drain starts with none kept (a full kernel
            # buffer stops reading until all is sent), or copies its hits otherwise
            first = len(hits_tx.lens) * slot
            fits = 0 if first else slot
        off = counted = first                   # hits in slots before `counted` are counted
        do53_udp = DO53_UDP
        now = time.time()
        now_s = int(now)
        hits = 0            # hits answered otherwise than from a send slot
        queries = 0
        budget = UDP_BUDGET
        self.in_round = True
        try:
            while budget > 0:
                try:
                    batch = read(budget)
                except OSError:
                    budget -= 1
                    continue
                if not batch:
                    break
                budget -= len(batch)
                for data, addr, out, local in batch:
                    if proxy_acl is not None and proxy_acl.match(addr[0]):
                        self.proxied(data, addr, self.sock if out.__class__ is bytes else out,
                                     now)
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
                    # query intake (PacketPath.count_query/accept_query) written out: counted
                    # in one go after the batch
                    queries += 1
                    if data[2] & 0x80:
                        stats.noncompliant_queries += 1
                        continue
                    qring((now, addr, data, do53_udp))
                    if cache is not None:
                        if blocks is not None and blocks.may_block(addr[0], now, addr[1]):
                            resp = None     # a dynamic block may apply: the full path decides
                        else:
                            # lookup_exact's usual hit written out (PacketCache.exact_parts):
                            # the record under the query's own bytes, ready, aged to this
                            # second, fresh, with its current verdict; the ID written in it
                            key = data[2:]
                            resp = parts[hash(key) % nparts].get(key)
                            if (resp is not None and resp.stamp == now_s
                                    and now_s < resp.validity
                                    and (memo is None or resp.note[0] is memo)):
                                resp[0] = data[0]
                                resp[1] = data[1]
                                served += 1
                            elif (memo is not None and resp is not None
                                    and resp.note[0] is not memo and key not in memo):
                                # no verdict of this chain on the record nor waiting for
                                # it (a LuaAction matched: never remembered): the full path
                                resp = None
                            else:
                                resp = cache.lookup_exact(data, True, now_s, memo)
                            if memo is not None and resp is not None:
                                for r in resp.note[1]:  # a pure chain's remembered verdict
                                    r.matches += 1
                        if resp is not None:
                            if out.__class__ is bytes:
                                # the shared ready-to-send buffer holds this query's ID only
                                # until the next lookup: the round sends its own copy (its
                                # RD and rcode counted from the copies: count_copied)
                                n = len(resp)
                                if n <= fits:
                                    slots[off:off + n] = resp
                                    off += slot
                                    lens_add(n)
                                    hit_dests_add(out)
                                    continue
                                datas_add(bytes(resp))
                                dests_add(out)
                            else:
                                try:
                                    out.sendto(resp, addr)
                                except OSError:
                                    pass
                            hits += 1
                            stats.rdqueries += data[2] & 0x01
                            stats.count_rcode(resp[3] & 0x0F)
                            continue
                    if queries:     # the rules may read the counters: all count (count_queries)
                        stats.queries += queries
                        fe.queries += queries
                        queries = 0
                    if off > counted:
                        self.count_copied(counted, off)
                        counted = off
                    if served:
                        cache.hits += served   # type: ignore[union-attr]
                        served = 0
                    full_path(data, addr, out, now, local)
                if len(batch) < RECV_BATCH:
                    break   # a short read emptied the socket: no second, empty recvmmsg
        finally:
            self.in_round = False
            if tx is not None and (tx.datas or hits_tx.lens):   # type: ignore[union-attr]
                self.flush()
        self.count_queries(queries)
        self.count_copied(counted, off)
        if served:
            cache.hits += served   # type: ignore[union-attr]
        hits += (off - first) // slot
        if hits:  # as 1.7.3: UDP cache hits are not counted in the frontend's responses
            stats.cache_hits += hits      # (also when a full-path query flushed the others)
            stats.zero_latency_samples(hits)

    def count_queries(self, queries: int) -> None:
        """The drain loop's queries not yet counted added to the stats (at the round's end;
        the loop writes this out before a full-path query, whose rules may read them)."""
        if queries:
            self.path.stats.queries += queries
            self.fe.queries += queries

    def count_copied(self, start: int, end: int) -> None:
        """The RD queries and rcodes of the hits copied into send slots `start`..`end`
        (offsets), read in bulk from the copies' own headers: an exact-level answer's RD bit
        is its query's (restored from the query, whose flags are in the key it was found by)."""
        if end > start:
            slots = self.hits_tx.buf   # type: ignore[union-attr]
            stats = self.path.stats
            stats.rdqueries += slots[start + 2:end:HIT_SLOT].translate(_RD_BIT).count(1)
            rcodes = slots[start + 3:end:HIT_SLOT].translate(_RCODE)
            noerror = rcodes.count(0)
            stats.frontend_noerror += noerror
            if noerror < len(rcodes):
                for rcode in rcodes:
                    if rcode:
                        stats.count_rcode(rcode)

    # ---- writing: answers gathered for sendmmsg, or sent one by one
    def send(self, data: bytes, out: Any, addr: Any) -> None:
        """An answer to send now: gathered for the round's sendmmsg when `out` is a raw
        client address (sent when the round ends, or, outside a drain, once the loop has
        run what is ready: a backend's drain), else sent through `out`."""
        if out.__class__ is not bytes:
            sendto(out, data, addr)
            return
        tx = self.tx
        tx.datas.append(data if data.__class__ is bytes else bytes(data))   # type: ignore
        tx.dests.append(out)   # type: ignore[union-attr]
        if not self.in_round and not self.flush_due:
            self.flush_due = True
            self.loop.call_soon(self.flush)

    def send_later(self, data: bytes, out: Any, addr: Any) -> None:
        """A delayed answer (DelayAction): its own send when its time comes."""
        sendto(self.sock if out.__class__ is bytes else out, data, addr)

    def flush(self) -> None:
        """Send the gathered answers (the drain's copied hits, then the others); a full kernel
        buffer keeps the rest, and the listener stops reading until it can write them
        (dnsdist's blocking send would wait too)."""
        self.flush_due = False
        if not self.flushed() and not self.blocked:
            self.blocked = True
            fd = self.sock.fileno()
            self.loop.remove_reader(fd)
            self.loop.add_writer(fd, self.writable)

    def flushed(self) -> bool:
        """Both senders emptied (False: the kernel's buffer is full, the rest kept)."""
        return self.hits_tx.flush() and self.tx.flush()   # type: ignore[union-attr]

    def writable(self) -> None:
        """Room again in the kernel's buffer: the kept answers go, then reading resumes."""
        if self.flushed():
            self.blocked = False
            fd = self.sock.fileno()
            self.loop.remove_writer(fd)
            self.loop.add_reader(fd, self.readable)

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
                self.loop.call_later(v.delay_ms / 1000.0, self.send_later, v.data, out, addr)
            else:
                self.send(v.data, out, addr)
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
        out = st.out
        if delay_ms > 0:
            self.loop.call_later(delay_ms / 1000.0, self.send_later, resp, out, st.client)
        elif out.__class__ is bytes and resp.__class__ is bytes:   # send() written out
            tx = self.tx
            tx.datas.append(resp)   # type: ignore[union-attr]
            tx.dests.append(out)    # type: ignore[union-attr]
            if not self.in_round and not self.flush_due:
                self.flush_due = True
                self.loop.call_soon(self.flush)
        else:
            self.send(resp, out, st.client)

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
