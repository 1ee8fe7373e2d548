"""ECS and proxy protocol towards backends, on pydist and real dnsdist 1.7.3: a recording
responder asserts the bytes each side sends, the client asserts what comes back."""
from __future__ import annotations

import socket

import dnslib
import pytest

from pydist.dns.ecs import ecs_option
from pydist.dns.reader import locate_opt
from tests.conftest import BOTH, Starter
from tests.helpers.pydist_proc import DnsdistProcess, poll_until
from tests.helpers.responder import Responder

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer{address="{backend}", useClientSubnet=true}
pc = newPacketCache(1000)
getPool(""):setCache(pc)
"""
COOKIE = bytes.fromhex("000a0008ea648dcb7c35262b")


def make_query(name: str, qid: int = 0x1234, options: bytes | None = None,
               payload: int = 1232) -> bytes:
    """A plain RD query for A; with an OPT RR holding `options` when given."""
    q = dnslib.DNSRecord.question(name)
    q.header.id = qid
    wire = bytearray(q.pack())
    if options is None:
        return bytes(wire)
    wire[10:12] = b"\x00\x01"
    return bytes(wire) + b"\x00\x00\x29" + payload.to_bytes(2, "big") + b"\x00" * 4 \
        + len(options).to_bytes(2, "big") + options


def exchange(where: tuple[str, int], wire: bytes, source: str = "127.0.0.1",
             tcp: bool = False) -> tuple[bytes, int]:
    """(answer bytes, our source port) for one query sent from `source`."""
    fam = socket.AF_INET6 if ":" in source else socket.AF_INET
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    with socket.socket(fam, kind) as s:
        s.settimeout(2.0)
        s.bind((source, 0))
        if tcp:
            s.connect(where)
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            n = int.from_bytes(_read(s, 2), "big")
            return _read(s, n), s.getsockname()[1]
        s.sendto(wire, where)
        return s.recv(65535), s.getsockname()[1]


def _read(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def received(resp: Responder, name: str) -> list[bytes]:
    """The query bytes (from the flags on) the backend got for one name, health checks aside."""
    label = name.split(".")[0].encode()
    with resp.lock:
        return [d[2:] for _, _, d in resp.raw if bytes([len(label)]) + label in d[12:]]


def start(impl: str, start_proc: Starter, resp: Responder, conf: str = CONF,
          **values: object) -> DnsdistProcess:
    resp.echo_opt = True
    return start_proc(impl, conf, {"backend": resp.address, **values})


@pytest.mark.parametrize("impl", BOTH)
def test_ecs_added_with_an_opt_then_removed(impl: str, start_proc: Starter,
                                           responder: Responder) -> None:
    """No OPT from the client: OPT(512) + ECS 127.0.0.0/24 to the backend, no OPT back."""
    proc = start(impl, start_proc, responder)
    q = make_query("noopt.example.")
    answer, _ = exchange(proc.addr(), q)
    sent = received(responder, "noopt.example.")
    assert sent == [q[2:10] + b"\x00\x01" + q[12:]
                    + bytes.fromhex("000029020000000000000b") + ecs_option("127.0.0.1", 24)]
    assert answer[:2] == q[:2] and answer[10:12] == b"\x00\x00"
    assert locate_opt(answer) == (-1, -1)
    assert dnslib.DNSRecord.parse(answer).rr[0].rdata == dnslib.A("192.0.2.1")


@pytest.mark.parametrize("impl", BOTH)
def test_ecs_appended_to_client_opt_and_only_it_removed(impl: str, start_proc: Starter,
                                                        responder: Responder) -> None:
    """OPT with a cookie: the ECS option follows it, and only the ECS leaves the answer."""
    proc = start(impl, start_proc, responder)
    q = make_query("withopt.example.", options=COOKIE)
    answer, _ = exchange(proc.addr(), q)
    ecs = ecs_option("127.0.0.1", 24)
    assert received(responder, "withopt.example.") == [
        q[2:-len(COOKIE) - 2] + (len(COOKIE) + len(ecs)).to_bytes(2, "big") + COOKIE + ecs]
    s, e = locate_opt(answer)
    assert answer[s:e] == q[-len(COOKIE) - 11:]         # the client's own OPT, as it sent it


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("override", [False, True])
def test_client_ecs_kept_or_overridden(impl: str, override: bool, start_proc: Starter,
                                       responder: Responder) -> None:
    """A client's ECS is passed on (and its scoped echo comes back) unless setECSOverride."""
    conf = CONF + ("setECSOverride(true)\n" if override else "")
    proc = start(impl, start_proc, responder, conf)
    theirs = ecs_option("10.1.2.0", 24)
    q = make_query("clientecs.example.", options=theirs + COOKIE)
    answer, _ = exchange(proc.addr(), q)
    ours = ecs_option("127.0.0.1", 24)
    expected = q[2:-len(theirs + COOKIE)] + (ours if override else theirs) + COOKIE
    assert received(responder, "clientecs.example.") == [expected]
    s, e = locate_opt(answer)
    echoed = bytearray(ours if override else theirs)
    echoed[7] = 24                                       # the backend's scope
    assert answer[s:e] == q[-len(theirs + COOKIE) - 11:-len(theirs + COOKIE)] + bytes(echoed) \
        + COOKIE


@pytest.mark.parametrize("impl", BOTH)
def test_cache_entries_per_client_subnet(impl: str, start_proc: Starter,
                                         responder: Responder) -> None:
    """The key is taken on the query as sent: 127.0.1.1 misses, 127.0.0.2 hits 127.0.0.1's."""
    proc = start(impl, start_proc, responder)
    q = make_query("percache.example.")
    first, _ = exchange(proc.addr(), q, "127.0.0.1")
    other, _ = exchange(proc.addr(), q, "127.0.1.1")
    same, _ = exchange(proc.addr(), q, "127.0.0.2")
    sent = received(responder, "percache.example.")
    assert [p[-3:] for p in sent] == [b"\x7f\x00\x00", b"\x7f\x00\x01"]
    for a in (first, other, same):
        assert a[10:12] == b"\x00\x00" and locate_opt(a) == (-1, -1)
    assert first[:12] == same[:12]


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("tcp", [False, True])
def test_source_prefix_settings_v4_v6(impl: str, tcp: bool, start_proc: Starter,
                                      responder: Responder) -> None:
    """setECSSourcePrefixV4/V6 over UDP and TCP, from 127.0.0.1 and ::1; nothing leaks back."""
    conf = CONF + 'addLocal("[::1]:{port}")\nsetECSSourcePrefixV4(20)\nsetECSSourcePrefixV6(40)\n'
    proc = start(impl, start_proc, responder, conf)
    for source, name, ecs in (("127.0.0.1", "vfour.example.", ecs_option("127.0.0.1", 20)),
                              ("::1", "vsix.example.", ecs_option("::1", 40))):
        q = make_query(name)
        answer, _ = exchange(proc.addr(family=6 if ":" in source else 4), q, source, tcp)
        assert received(responder, name) == [q[2:10] + b"\x00\x01" + q[12:]
                                             + bytes.fromhex("000029020000000000")
                                             + len(ecs).to_bytes(2, "big") + ecs]
        assert answer[10:12] == b"\x00\x00" and locate_opt(answer) == (-1, -1)


ACTIONS = CONF + """
addAction(QNameRule("fixed.example."), SetECSAction("192.0.2.77/24", "2001:db8::/48"))
addAction(QNameRule("short.example."), SetECSPrefixLengthAction(16, 48))
addAction(QNameRule("none.example."), SetDisableECSAction())
addAction(QNameRule("over.example."), SetECSOverrideAction(true))
"""


@pytest.mark.parametrize("impl", BOTH)
def test_ecs_actions(impl: str, start_proc: Starter, responder: Responder) -> None:
    """SetECSAction's fixed subnet, SetECSPrefixLengthAction, SetDisableECSAction, override."""
    proc = start(impl, start_proc, responder, ACTIONS)
    for name in ("fixed", "short", "none"):
        q = make_query(f"{name}.example.")
        answer, _ = exchange(proc.addr(), q)
        assert locate_opt(answer) == (-1, -1)
    opt = bytes.fromhex("000029020000000000")
    base = make_query("fixed.example.")
    fixed = ecs_option("192.0.2.0", 24)
    assert received(responder, "fixed.example.") == [
        base[2:10] + b"\x00\x01" + base[12:] + opt + len(fixed).to_bytes(2, "big") + fixed]
    assert received(responder, "short.example.")[0].endswith(ecs_option("127.0.0.1", 16))
    assert received(responder, "none.example.") == [make_query("none.example.")[2:]]
    theirs = ecs_option("10.9.9.0", 24)
    exchange(proc.addr(), make_query("over.example.", options=theirs))
    assert received(responder, "over.example.")[0].endswith(ecs_option("127.0.0.1", 24))


@pytest.mark.parametrize("impl", BOTH)
def test_health_checks_carry_no_ecs(impl: str, start_proc: Starter,
                                    responder: Responder) -> None:
    start(impl, start_proc, responder)
    checks = received(responder, "a.root-servers.net.")
    assert checks and all(c[8:10] == b"\x00\x00" for c in checks)   # ARCOUNT 0: no OPT


PROXY = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer{address="{backend}", useProxyProtocol=true}
newServer{address="{tcpbackend}", useProxyProtocol=true, checkTCP=true, tcpOnly=true, pool="t"}
addAction(QNameRule("tcp.example."), PoolAction("t"))
addAction(QNameRule("tlv.example."), SetAdditionalProxyProtocolValueAction(42, "foo"))
addAction(QNameRule("tlvs.example."), SetProxyProtocolValuesAction({[1]="a", [3]="bc"}))
addAction(QNameRule("luatlv.example."), LuaAction(function(dq)
  dq:addProxyProtocolValue(1, dq.localaddr:tostring())
  return DNSAction.None, ""
end))
"""


def proxied_for(resp: Responder, name: str) -> list[dict]:
    label = name.split(".")[0].encode()
    return [p for _, p, d in resp.proxied() if bytes([len(label)]) + label in d[12:]]


@pytest.mark.parametrize("impl", BOTH)
def test_proxy_protocol_udp_tcp_and_health_checks(impl: str, start_proc: Starter,
                                                   responder_factory) -> None:
    """PROXY v2 header with the client's and the frontend's addresses, per datagram over UDP,
    at the start of the connection over TCP; TLVs from the rules; LOCAL header on checks."""
    udp_b, tcp_b = responder_factory(), responder_factory()
    proc = start_proc(impl, PROXY, {"backend": udp_b.address, "tcpbackend": tcp_b.address})
    front = proc.addr()
    for resp, transport in ((udp_b, "udp"), (tcp_b, "tcp")):     # LOCAL health checks
        checks = poll_until(lambda: resp.proxied(transport))
        assert [p[1]["command"] for p in checks][:1] == [0]
    for name, values in (("plain.example.", []), ("tlv.example.", [(42, b"foo")]),
                         ("tlvs.example.", [(3, b"bc"), (1, b"a")]),
                         ("luatlv.example.", [(1, b"127.0.0.1")])):
        answer, port = exchange(front, make_query(name))
        assert dnslib.DNSRecord.parse(answer).rr[0].rdata == dnslib.A("192.0.2.1")
        assert proxied_for(udp_b, name) == [{
            "command": 1, "tcp": False, "values": values, "source": ("127.0.0.1", port),
            "destination": front}]
    for via_tcp in (True, False):
        answer, port = exchange(front, make_query("tcp.example."), tcp=via_tcp)
        assert dnslib.DNSRecord.parse(answer).rr[0].rdata == dnslib.A("192.0.2.1")
        got = poll_until(lambda: proxied_for(tcp_b, "tcp.example.")[1 - via_tcp:2 - via_tcp])
        assert got == [{"command": 1, "tcp": via_tcp, "values": [],
                        "source": ("127.0.0.1", port), "destination": front}]


@pytest.mark.parametrize("impl", BOTH)
def test_proxied_tcp_connection_belongs_to_one_client(impl: str, start_proc: Starter,
                                                      responder_factory) -> None:
    """Two queries on one client connection share one backend connection (one header);
    another client connection gets its own."""
    udp_b, tcp_b = responder_factory(), responder_factory()
    proc = start_proc(impl, PROXY, {"backend": udp_b.address, "tcpbackend": tcp_b.address})
    ports = []
    for _ in range(2):
        with socket.create_connection(proc.addr(), timeout=2.0) as s:
            ports.append(s.getsockname()[1])
            for qid in (1, 2):
                wire = make_query("tcp.example.", qid=qid)
                s.sendall(len(wire).to_bytes(2, "big") + wire)
                answer = _read(s, int.from_bytes(_read(s, 2), "big"))
                assert answer[:2] == wire[:2]
    headers = [p for _, p, d in tcp_b.proxied("tcp") if p["command"] == 1]
    assert [h["source"][1] for h in headers] == [ports[0], ports[0], ports[1], ports[1]]
    assert headers[0] is headers[1] and headers[2] is headers[3]   # parsed once per connection
    assert headers[1] is not headers[2]


@pytest.mark.parametrize("impl", BOTH)
def test_garbled_edns_does_not_stop_the_service(impl: str, start_proc: Starter,
                                                responder: Responder) -> None:
    """Options overrunning their OPT, an rdlength past the end, a cut question: whatever
    becomes of them, the next good query is answered."""
    proc = start(impl, start_proc, responder)
    base = make_query("bad.example.")
    base = base[:10] + b"\x00\x01" + base[12:]
    for junk in (base + bytes.fromhex("0000290200000000000005000800200000"),
                 base + bytes.fromhex("00002902000000000000ff0008"), base[:20]):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(junk, proc.addr())
    answer, _ = exchange(proc.addr(), make_query("good.example."))
    assert dnslib.DNSRecord.parse(answer).rr[0].rdata == dnslib.A("192.0.2.1")
    assert proc.alive()


DQ_FIELDS = CONF + """
setECSOverride(true)
addAction(QNameRule("keep.example."), SetECSOverrideAction(false))
addAction(QNameRule("lua.example."), LuaAction(function(dq)
  dq.ecsPrefixLength = dq.ecsPrefixLength - 4
  return DNSAction.None, ""
end))
"""


@pytest.mark.parametrize("impl", BOTH)
def test_dq_starts_from_the_global_ecs_settings(impl: str, start_proc: Starter,
                                               responder: Responder) -> None:
    """dq.ecsPrefixLength reads setECSSourcePrefixV4's 24; SetECSOverrideAction(false) beats
    setECSOverride(true); without a rule the global override applies."""
    proc = start(impl, start_proc, responder, DQ_FIELDS)
    exchange(proc.addr(), make_query("lua.example."))
    assert received(responder, "lua.example.")[0].endswith(ecs_option("127.0.0.1", 20))
    theirs = ecs_option("10.9.9.0", 24)
    for name, sent in (("keep.example.", theirs), ("other.example.", ecs_option("127.0.0.1", 24))):
        exchange(proc.addr(), make_query(name, options=theirs))
        assert received(responder, name)[0].endswith(sent)


PARSE_ECS = CONF.replace("newPacketCache(1000)", "newPacketCache(1000, {parseECS=true})")


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("scope", [None, 0])
def test_parse_ecs_cache_and_zero_scope(impl: str, scope: int | None, start_proc: Starter,
                                        responder: Responder) -> None:
    """parseECS: each /24 has its entry (the ECS option stays in the key); an answer with
    scope 0 is stored under the query as the client sent it and serves every client."""
    proc = start(impl, start_proc, responder, PARSE_ECS)
    responder.ecs_scope = scope
    q = make_query("zero.example.")
    for source in ("127.0.0.1", "127.0.0.1", "127.0.1.1", "127.0.1.1", "127.0.0.9"):
        answer, _ = exchange(proc.addr(), q, source)
        assert locate_opt(answer) == (-1, -1)
    sent = [p[-3:] for p in received(responder, "zero.example.")]
    assert sent == ([b"\x7f\x00\x00"] if scope == 0 else [b"\x7f\x00\x00", b"\x7f\x00\x01"])
