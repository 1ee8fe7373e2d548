"""The batched UDP layer (pydist/net/mmsg.py) and the listeners and backends that use it: a
batch of N datagrams in gives N answers out, partial and refused sends lose nothing they
should not, and the portable recvfrom/sendto path is chosen when the calls are unavailable."""
from __future__ import annotations

import ctypes
import errno
import socket
import time
from typing import Any, Callable, Iterator

import pytest

from pydist.net import mmsg


def udp(bind: bool = True) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if bind:
        s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    """A listener and 7 clients, each on its own source port."""
    listener, clients = udp(), [udp() for _ in range(7)]
    yield listener, clients
    for s in (listener, *clients):
        s.close()


def drain(sock: socket.socket) -> list[tuple[bytes, Any]]:
    out = []
    sock.settimeout(1.0)
    while True:
        try:
            out.append(sock.recvfrom(65535))
        except (socket.timeout, BlockingIOError):
            return out
        sock.settimeout(0.05)


def test_available_on_this_platform() -> None:
    """The machine this project targets (Linux, CPython) has the calls: no silent fallback."""
    assert mmsg.available()


def test_a_batch_of_n_in_gives_n_out(pair: tuple[socket.socket, list[socket.socket]]) -> None:
    listener, clients = pair
    rx = mmsg.Receiver(listener, 64, 512, True)
    tx = mmsg.Sender(listener, 16, True)       # smaller than the batch: sent in several calls
    memo = mmsg.AddressMemo()
    sent = {}
    for k in range(50):
        c = clients[k % len(clients)]
        c.sendto(b"query-%d" % k, listener.getsockname())
        sent[b"query-%d" % k] = c.getsockname()
    got = rx.recv()
    assert len(got) == 50
    for k, n in enumerate(got):
        data = rx.buf[k * 512:k * 512 + n]
        raw = rx.namebuf[k * mmsg.NAME_SIZE:k * mmsg.NAME_SIZE + rx.namelen]
        assert memo[raw] == sent[data]                     # the sender, as recvfrom says it
        tx.add(b"answer-" + data, raw)
    assert rx.recv() == []                                 # nothing left: no error either
    assert tx.flush() and len(tx) == 0
    for c in clients:
        answers = drain(c)
        assert answers and all(addr == listener.getsockname() for _, addr in answers)
        for data, _ in answers:
            assert sent[data[len(b"answer-"):]] == c.getsockname()
    rx.close()
    tx.close()


def test_oversized_datagram_is_cut_to_the_slot(pair: tuple[socket.socket, list[socket.socket]]) -> None:
    """A datagram larger than its slot comes out at the slot's size (the listener's slot is
    one byte more than the largest query it takes: such a datagram is refused)."""
    listener, clients = pair
    rx = mmsg.Receiver(listener, 4, 100, True)
    clients[0].sendto(b"x" * 300, listener.getsockname())
    assert rx.recv() == [100]


def test_ipv6_addresses_come_out_as_recvfrom_gives_them() -> None:
    try:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        listener.bind(("::1", 0))
    except OSError as e:
        pytest.fail(f"no IPv6 loopback: {e}")
    client = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    client.bind(("::1", 0))
    try:
        rx = mmsg.Receiver(listener, 4, 100, True)
        client.sendto(b"q", listener.getsockname())
        listener.setblocking(False)
        import select
        select.select([listener], [], [], 1.0)
        assert rx.recv() == [1]
        raw = rx.namebuf[:rx.namelen]
        assert mmsg.AddressMemo()[raw] == client.getsockname()
        tx = mmsg.Sender(listener, 4, True)
        tx.add(b"a", raw)
        assert tx.flush()
        client.settimeout(1.0)
        assert client.recvfrom(10)[0] == b"a"
    finally:
        listener.close()
        client.close()


def test_the_address_memo_is_bounded() -> None:
    memo = mmsg.AddressMemo(limit=3)
    raws = [socket.AF_INET.to_bytes(2, "little") + p.to_bytes(2, "big") + bytes([127, 0, 0, 1])
            + bytes(8) for p in range(1000, 1010)]
    for raw in raws:
        assert memo[raw][1] in range(1000, 1010)
    assert len(memo) <= 3


class FakeSendmmsg:
    """Stands in for libc's sendmmsg: reads each message from the headers it is given (so what
    the Sender wrote is checked, by reference included) and answers from a script: a number
    sent, or an errno."""

    def __init__(self, script: list[int | str]) -> None:
        self.script = script
        self.sent: list[tuple[bytes, bytes | None]] = []
        self.calls = 0

    def __call__(self, fd: int, hdrs: int, count: int, flags: int) -> int:
        self.calls += 1
        step = self.script.pop(0) if self.script else count
        if isinstance(step, str):
            ctypes.set_errno(getattr(errno, step))
            return -1
        for k in range(min(step, count)):
            h = mmsg._MMsgHdr.from_address(hdrs + k * mmsg.HDR_SIZE)
            iov = mmsg._IOVec.from_address(h.msg_hdr.msg_iov)
            name = ctypes.string_at(h.msg_hdr.msg_name, h.msg_hdr.msg_namelen) \
                if h.msg_hdr.msg_name else None
            self.sent.append((ctypes.string_at(iov.iov_base, iov.iov_len), name))
        return min(step, count)


def sender(script: list[int | str], **kw: Any) -> tuple[mmsg.Sender, FakeSendmmsg, list]:
    fake = FakeSendmmsg(script)
    errors: list[tuple[Any, int]] = []
    s = udp()
    tx = mmsg.Sender(s, 8, True, lambda tag, err: errors.append((tag, err)), call=fake, **kw)
    s.close()
    return tx, fake, errors


def fill(tx: mmsg.Sender, n: int) -> list[bytes]:
    msgs = [b"message %d" % k for k in range(n)]
    for k, m in enumerate(msgs):
        tx.datas.append(m)
        tx.dests.append(b"dest %d" % k)
        tx.tags.append(k)
    return msgs


def test_partial_sends_are_resumed_in_order() -> None:
    """sendmmsg sending fewer than asked: the rest follows in the next call, nothing twice."""
    tx, fake, errors = sender([3, 1, 2])
    msgs = fill(tx, 12)       # 8 + 4: two batches
    assert tx.flush()
    assert [m for m, _ in fake.sent] == msgs
    assert [d for _, d in fake.sent] == [b"dest %d" % k for k in range(12)]
    assert errors == [] and len(tx) == 0


def test_a_full_buffer_keeps_the_rest_for_later() -> None:
    tx, fake, errors = sender([5, "EAGAIN", "EAGAIN"])
    msgs = fill(tx, 8)
    assert not tx.flush()                       # 5 sent, then the kernel's buffer is full
    assert [m for m, _ in fake.sent] == msgs[:5] and len(tx) == 3
    assert not tx.flush()                       # still full: nothing lost, nothing sent
    assert len(tx) == 3
    assert tx.flush()                           # room again
    assert [m for m, _ in fake.sent] == msgs and errors == [] and len(tx) == 0


def test_interrupted_call_is_retried() -> None:
    tx, fake, errors = sender(["EINTR"])
    msgs = fill(tx, 4)
    assert tx.flush()
    assert [m for m, _ in fake.sent] == msgs and errors == []


def test_a_refused_message_is_lost_alone_and_reported() -> None:
    """Another error than a full buffer: as a failed sendto, that answer only is lost."""
    tx, fake, errors = sender([2, "EPERM"])
    msgs = fill(tx, 6)
    assert tx.flush()
    assert [m for m, _ in fake.sent] == msgs[:2] + msgs[3:]
    assert errors == [(2, errno.EPERM)]


def test_without_waiting_a_full_buffer_is_an_error_per_message() -> None:
    """The backend's queries: a full buffer fails the query, as a failed send does."""
    tx, fake, errors = sender(["EAGAIN", 1, "EAGAIN"], wait_when_full=False)
    msgs = fill(tx, 3)
    assert tx.flush() and len(tx) == 0
    assert [m for m, _ in fake.sent] == [msgs[1]]
    assert errors == [(0, errno.EAGAIN), (2, errno.EAGAIN)]


def test_env_var_forces_the_portable_path(monkeypatch: pytest.MonkeyPatch) -> None:
    s = udp()
    try:
        assert mmsg.batchable(s)
        monkeypatch.setenv(mmsg.DISABLE_ENV, "1")
        assert not mmsg.available() and not mmsg.batchable(s)
    finally:
        s.close()


def test_not_a_socket_is_not_batched() -> None:
    class Fake:
        def fileno(self) -> int:
            return 0
    assert not mmsg.batchable(Fake())


# ---- the listener and the backend on top of it

class RecordingLoop:
    def __init__(self) -> None:
        self.readers: dict[int, Callable] = {}
        self.writers: dict[int, Callable] = {}
        self.soon: list[Callable] = []

    def add_reader(self, fd: int, cb: Callable, *args: Any) -> None:
        self.readers[fd] = cb

    def remove_reader(self, fd: int) -> None:
        self.readers.pop(fd, None)

    def add_writer(self, fd: int, cb: Callable, *args: Any) -> None:
        self.writers[fd] = cb

    def remove_writer(self, fd: int) -> None:
        self.writers.pop(fd, None)

    def call_soon(self, cb: Callable, *args: Any) -> None:
        self.soon.append(lambda: cb(*args))

    def call_later(self, *args: Any) -> None:
        pass

    def run_soon(self) -> None:
        while self.soon:
            self.soon.pop(0)()


def engine_with(loop: RecordingLoop) -> tuple[Any, Any]:
    """A real packet path and backend (cache, one server) on a recording loop."""
    from luaapi.runtime import LuaConfig
    from pydist.engine import Engine
    from pydist.registry import Registry
    reg = Registry(log=lambda line: None)
    LuaConfig(reg).run_code("""
        setLocal("127.0.0.1:53")
        newServer{address="127.0.0.1:9"}
        pc = newPacketCache(1000, {maxTTL=86400})
        getPool(""):setCache(pc)
    """, "chunk")
    engine = Engine(reg, loop)  # type: ignore[arg-type]
    engine.server_added(reg.servers[0])
    reg.servers[0].up_status = True
    engine.path.refresh()
    return reg, engine


def test_listener_and_backend_choose_the_portable_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydist.frontend.udp import UDPFrontend
    monkeypatch.setenv(mmsg.DISABLE_ENV, "1")
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    s = udp()
    try:
        fe = UDPFrontend(engine.path, reg.frontends[0].udp_state, s)
        assert fe.rx is None and fe.tx is None and fe.read == fe.read_one_by_one
        assert reg.servers[0].udp.senders == {} and reg.servers[0].udp.receivers == {}
        monkeypatch.delenv(mmsg.DISABLE_ENV)
        assert UDPFrontend(engine.path, reg.frontends[0].udp_state, s, batched=False).rx is None
        assert UDPFrontend(engine.path, reg.frontends[0].udp_state, s).rx is not None
    finally:
        reg.servers[0].udp.close()
        s.close()


def test_listener_waits_for_room_instead_of_losing_answers() -> None:
    """A full kernel buffer: the listener stops reading, waits to write, sends what it kept
    (in order), then reads again."""
    from pydist.frontend.udp import UDPFrontend
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    s = udp()
    try:
        fe = UDPFrontend(engine.path, reg.frontends[0].udp_state, s)
        fake = FakeSendmmsg([2, "EAGAIN"])
        fe.tx._call = fake   # type: ignore[union-attr]
        loop.readers[s.fileno()] = fe.readable
        for k in range(5):
            fe.send(b"answer %d" % k, b"raw %d" % k, ("127.0.0.1", 1))
        assert len(loop.soon) == 1                  # one send for the whole round
        loop.run_soon()
        assert fe.blocked and s.fileno() not in loop.readers and s.fileno() in loop.writers
        fe.send(b"answer 5", b"raw 5", ("127.0.0.1", 1))  # a backend answer meanwhile: kept
        loop.run_soon()
        loop.writers[s.fileno()]()
        assert [m for m, _ in fake.sent] == [b"answer %d" % k for k in range(6)]
        assert [d for _, d in fake.sent] == [b"raw %d" % k for k in range(6)]
        assert not fe.blocked and loop.readers[s.fileno()] == fe.readable
        assert s.fileno() not in loop.writers
    finally:
        reg.servers[0].udp.close()
        s.close()


def test_backend_queries_go_in_one_call_and_failures_count_as_send_errors() -> None:
    from pydist.backend.udp import InFlight
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    server = reg.servers[0]
    backend = server.udp
    sock = backend.socks[0]
    fake = FakeSendmmsg([1, "ECONNREFUSED"])
    backend.senders[sock]._call = fake
    try:
        for k in range(4):
            st = InFlight(bytes([0, k]), ("127.0.0.1", 1000 + k), None, b"", 0.0, 0, None, None,
                          b"", 0, 0x0100)
            assert backend.send(bytes([0, k]) + b"query %d" % k, st)
        assert fake.calls == 0 and len(loop.soon) == 1     # gathered until the round ends
        loop.run_soon()
        assert [m for m, _ in fake.sent] == [bytes([0, k]) + b"query %d" % k for k in (0, 2, 3)]
        assert all(name is None for _, name in fake.sent)   # a connected socket
        assert (server.queries, server.send_errors, server.outstanding) == (3, 1, 3)
        assert reg.stats.downstream_send_errors == 1
        assert sorted(backend.inflight) == [0, 2, 3]
    finally:
        backend.close()


# ---- the drain's cache hits: copied into send slots

def copy_sender(script: list[int | str], count: int = 8) -> tuple[mmsg.CopySender, FakeSendmmsg]:
    fake = FakeSendmmsg(script)
    s = udp()
    tx = mmsg.CopySender(s, count, 32, 16, call=fake)
    s.close()
    return tx, fake


def queue_copies(tx: mmsg.CopySender, n: int) -> list[tuple[bytes, bytes]]:
    """What the drain loop writes for n hits (tx.buf slots, lengths, destinations)."""
    out = []
    for k in range(n):
        msg, dest = b"answer %d" % k, b"destination %04d" % k
        tx.buf[k * tx.slot_size:k * tx.slot_size + len(msg)] = msg
        tx.lens.append(len(msg))
        tx.dests.append(dest)
        out.append((msg, dest))
    return out


def test_copied_answers_go_in_one_call_with_their_destinations() -> None:
    tx, fake = copy_sender([])
    sent = queue_copies(tx, 8)
    assert tx.flush() and fake.calls == 1 and fake.sent == sent
    assert len(tx) == 0 and not tx.lens and not tx.dests
    sent = queue_copies(tx, 3)                   # the slots serve the next drain again
    assert tx.flush() and fake.sent[8:] == sent


@pytest.mark.parametrize("n", [1, mmsg.SMALL_BATCH, mmsg.SMALL_BATCH + 1, 30])
def test_small_and_large_batches_fill_the_same_headers(n: int) -> None:
    """Up to SMALL_BATCH messages the headers are written one by one, above it from arrays:
    either way each message leaves with its own bytes and destination."""
    fake = FakeSendmmsg([])
    s = udp()
    tx = mmsg.Sender(s, 32, True, call=fake)
    s.close()
    msgs = [(b"m" * (k + 1), b"dest %04d" % k) for k in range(n)]
    for m, d in msgs:
        tx.add(m, d)
    assert tx.flush() and fake.calls == 1 and fake.sent == msgs
    ctx, cfake = copy_sender([], 32)
    sent = queue_copies(ctx, n)
    assert ctx.flush() and cfake.calls == 1 and cfake.sent == sent


def test_copied_answers_wait_for_room_in_order() -> None:
    tx, fake = copy_sender([3, "EAGAIN", 2, "EAGAIN"])
    sent = queue_copies(tx, 7)
    assert not tx.flush() and fake.sent == sent[:3] and len(tx) == 4
    assert not tx.flush() and fake.sent == sent[:5] and len(tx) == 2
    assert tx.flush() and fake.sent == sent and len(tx) == 0


def a_records(name: str, count: int) -> bytes:
    import dnslib
    r = dnslib.DNSRecord.question(name, "A").reply()
    for k in range(count):
        r.add_answer(dnslib.RR(name, dnslib.QTYPE.A, rdata=dnslib.A(f"192.0.2.{k % 250}"),
                               ttl=3600))
    return bytes(r.pack())


def test_hits_of_one_drain_each_carry_their_own_id() -> None:
    """Many hits on the same cached answers in one drain: the cache's ready-to-send record
    holds the latest ID only, so each answer must leave with its own query's ID (and an
    answer too long for a send slot too)."""
    import dnslib
    from pydist.dns.wire import parse_question
    from pydist.frontend.udp import HIT_SLOT, UDPFrontend
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    cache = reg.get_pool("").cache
    names = {"small.test.": 1, "big.test.": 90}
    for name, count in names.items():
        q = bytes(dnslib.DNSRecord.question(name, "A").pack())
        cache.insert(None, q, parse_question(q)[0], True, a_records(name, count), time.time())
    assert len(a_records("big.test.", 90)) > HIT_SLOT
    listener, client = udp(), udp()
    try:
        fe = UDPFrontend(engine.path, reg.frontends[0].udp_state, listener)
        sent = {}
        for ident in range(1, 121):
            q = dnslib.DNSRecord.question("big.test." if ident % 10 == 0 else "small.test.", "A")
            q.header.id = ident
            sent[ident] = str(q.q.qname)
            client.sendto(q.pack(), listener.getsockname())
        fe.readable()
        got = [dnslib.DNSRecord.parse(data) for data, _ in drain(client)]
        assert sorted(r.header.id for r in got) == list(range(1, 121))
        for r in got:
            assert str(r.q.qname) == sent[r.header.id]
            assert len(r.rr) == names[sent[r.header.id]]
        assert reg.stats.cache_hits == 120 and reg.stats.frontend_noerror == 120
        assert reg.stats.rdqueries == 120 and reg.stats.queries == 120
    finally:
        reg.servers[0].udp.close()
        listener.close()
        client.close()


def burst_counters(batched: bool) -> dict[str, int]:
    """One drain of 90 hits on cached NOERROR, NXDOMAIN and SERVFAIL answers, queries with RD
    and without, and a miss in the middle (the full path, whose rules may read the counters
    of the hits before it): the listener's counters after it."""
    import dnslib
    from pydist.dns.wire import parse_question
    from pydist.frontend.udp import UDPFrontend
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    cache = reg.get_pool("").cache
    seen_by_full_path: list[tuple[int, int, int]] = []
    step = engine.path.query_step

    def full_path(*args: Any) -> Any:
        st = reg.stats
        seen_by_full_path.append((st.rdqueries, st.frontend_noerror, st.frontend_nxdomain,
                                  cache.hits))
        return step(*args)
    engine.path.query_step = full_path  # type: ignore[method-assign]
    queries = []
    for k, (rcode, rd) in enumerate([(0, 1), (3, 1), (2, 0), (0, 0), (3, 0)]):
        q = dnslib.DNSRecord.question(f"n{k}.test.", "A")
        q.header.rd = rd
        r = q.reply()
        r.header.rcode = rcode
        if rcode == 0:
            r.add_answer(dnslib.RR(f"n{k}.test.", rdata=dnslib.A("192.0.2.1"), ttl=3600))
        else:
            r.add_auth(dnslib.RR("test.", dnslib.QTYPE.SOA, ttl=3600, rdata=dnslib.SOA(
                "ns.test.", "h.test.", (1, 2, 3, 4, 3600))))
        wire = bytes(q.pack())
        cache.insert(None, wire, parse_question(wire)[0], True, bytes(r.pack()), time.time())
        queries.append(wire)
    burst = [queries[k % 5] for k in range(45)] + [bytes(dnslib.DNSRecord.question(
        "miss.test.", "A").pack())] + [queries[k % 5] for k in range(45)]
    listener, client = udp(), udp()
    try:
        fe = UDPFrontend(engine.path, reg.frontends[0].udp_state, listener, batched=batched)
        assert (fe.hits_tx is not None) == batched
        for q in burst:
            client.sendto(q, listener.getsockname())
        fe.readable()
        assert len(drain(client)) == 90
    finally:
        reg.servers[0].udp.close()
        listener.close()
        client.close()
    st = reg.stats
    return {"queries": st.queries, "cache-hits": st.cache_hits, "rdqueries": st.rdqueries,
            "noerror": st.frontend_noerror, "nxdomain": st.frontend_nxdomain,
            "servfail": st.frontend_servfail, "pc hits": cache.hits, "seen": seen_by_full_path}


def test_hits_copied_into_slots_count_as_hits_answered_one_by_one() -> None:
    """The drain's copied hits are counted from the copies, in bulk, and the hits it serves
    itself in the cache's hits: the same figures as the portable path's hit by hit, also as
    the full path's rules would read them."""
    batched = burst_counters(True)
    assert batched == burst_counters(False)
    assert batched == {"queries": 91, "cache-hits": 90, "rdqueries": 37, "noerror": 36,
                       "nxdomain": 36, "servfail": 18, "pc hits": 90,
                       "seen": [(18, 18, 18, 45)]}


def test_a_drain_with_copies_still_kept_copies_its_hits_otherwise() -> None:
    """Reading waits while a full kernel buffer keeps copies; should a drain run anyway, its
    hits must not reuse the kept copies' slots: they go as copies of their own."""
    import dnslib
    from pydist.dns.wire import parse_question
    from pydist.frontend.udp import UDPFrontend
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    q = bytes(dnslib.DNSRecord.question("kept.test.", "A").pack())
    reg.get_pool("").cache.insert(None, q, parse_question(q)[0], True,
                                  a_records("kept.test.", 1), time.time())
    listener, client = udp(), udp()
    try:
        fe = UDPFrontend(engine.path, reg.frontends[0].udp_state, listener)
        real = fe.hits_tx._call                      # type: ignore[union-attr]
        script = ["EAGAIN"]

        def sendmmsg(fd: int, hdrs: int, count: int, flags: int) -> int:
            if script:
                ctypes.set_errno(getattr(errno, script.pop()))
                return -1
            return real(fd, hdrs, count, flags)
        fe.hits_tx._call = sendmmsg                   # type: ignore[union-attr]

        def burst(idents: range) -> None:
            for ident in idents:
                m = dnslib.DNSRecord.parse(q)
                m.header.id = ident
                client.sendto(m.pack(), listener.getsockname())
        burst(range(1, 11))
        fe.readable()
        assert fe.blocked and len(fe.hits_tx) == 10   # type: ignore[arg-type]
        burst(range(11, 21))
        sent_as_copies = []
        fe.tx._send_batch = lambda datas, dests: (  # type: ignore[union-attr]
            sent_as_copies.extend(datas) or send_batch(datas, dests))
        send_batch = mmsg.Sender._send_batch.__get__(fe.tx)
        fe.readable()                                 # not called while blocked; if it were
        assert len(sent_as_copies) == 10 and len(fe.hits_tx) == 0   # type: ignore[arg-type]
        fe.writable()
        got = sorted(dnslib.DNSRecord.parse(d).header.id for d, _ in drain(client))
        assert got == list(range(1, 21)) and not fe.blocked
        assert reg.stats.cache_hits == 20
    finally:
        reg.servers[0].udp.close()
        listener.close()
        client.close()


def test_a_short_read_ends_the_drain_without_an_empty_recvmmsg() -> None:
    """Fewer datagrams than a recvmmsg holds: the socket is empty, so the drain ends there
    (a second call would only find nothing; with several workers sharing the load most
    wake-ups are short, and that empty call was a tenth of a round's cost)."""
    import dnslib
    from pydist.frontend.udp import UDPFrontend
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    listener, client = udp(), udp()
    try:
        fe = UDPFrontend(engine.path, reg.frontends[0].udp_state, listener)
        calls = []
        recv = fe.rx.recv   # type: ignore[union-attr]
        fe.rx.recv = lambda: calls.append(1) or recv()   # type: ignore[union-attr,method-assign]
        for ident in range(3):
            client.sendto(dnslib.DNSRecord.question("x.test.", "A").pack(), listener.getsockname())
        fe.readable()
        assert len(calls) == 1 and reg.stats.queries == 3
    finally:
        reg.servers[0].udp.close()
        listener.close()
        client.close()


def test_a_short_backend_read_ends_the_backend_drain() -> None:
    """The backend side likewise: fewer answers than a recvmmsg holds, no second call."""
    loop = RecordingLoop()
    reg, engine = engine_with(loop)
    server = reg.servers[0]

    class ShortReads:
        count, slot_size, buf = 32, 64, bytearray(64 * 32)
        calls = 0

        def recv(self) -> list[int]:
            self.calls += 1
            return [5, 5] if self.calls == 1 else []    # two runts (noncompliant), then empty

    try:
        rx = ShortReads()
        server.udp._drain_rounds(rx)
        assert rx.calls == 1 and reg.stats.noncompliant_responses == 2
    finally:
        server.udp.close()
