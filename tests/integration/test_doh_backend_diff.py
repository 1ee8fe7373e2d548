"""newServer{tls="openssl", dohPath=...}: real dnsdist 1.7.3 and pydist side by side, each
forwarding to its own loopback DoH responder (HTTP/2 over TLS, a test CA): answers, the
requests the upstream sees, counters, showServers(), metrics, health checks, proxy protocol,
concurrent streams, and upstreams that answer badly or not at all."""
from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.flags
import dnslib
import pytest

from pydist.compare.dohresponder import DoHReply, DoHRequest, DoHResponder
from pydist.compare.responder import build_answer
from tests.conftest import Starter
from tests.helpers.doh_backend import (
    answering,
    console,
    doh_server,
    doh_upstream,
    global_stats,
    head,
    is_health_check,
    server_metrics,
    server_row,
)
from tests.helpers.dot import CertSet, make_cert_set
from tests.helpers.pydist_proc import IMPLS, poll_until, query

# counters that do not depend on when the health checks ran
STEADY = ("queries", "responses", "drops", "senderrors", "outstanding", "tcpdiedsendingquery",
          "tcpdiedreadingresponse", "tcpgaveup", "tcpwritetimeouts", "tcpconnecttimeouts")
GLOBAL = ("queries", "responses", "cache-hits", "cache-misses", "frontend-noerror",
          "frontend-nxdomain", "latency-count", "noncompliant-responses", "downstream-timeouts",
          "no-policy")


@pytest.fixture(scope="module", autouse=True)
def _needs_dnsdist() -> None:
    assert shutil.which("dnsdist"), "these differential tests need real dnsdist 1.7.3"


@pytest.fixture
def certs(tmp_path: Path) -> CertSet:
    return make_cert_set(tmp_path / "certs")


def queries_seen(responder: DoHResponder) -> list[DoHRequest]:
    return [r for r in responder.received() if not is_health_check(r)]


def request_shape(req: DoHRequest) -> list[tuple[str, str]]:
    """The headers, with the client's port (a different one on each side) masked."""
    return [(k, "<port>" if k == "x-forwarded-port" else v) for k, v in req.headers]


def test_answers_requests_counters_and_outputs(start_proc: Starter, certs: CertSet) -> None:
    """UDP and TCP clients through a packet cache to a DoH server with addXForwardedHeaders:
    same answers, same requests, same counters and outputs on both."""
    seen = {}
    for impl in IMPLS:
        with doh_upstream(certs) as up:
            conf = head('pc = newPacketCache(100)\ngetPool(""):setCache(pc)\n') + doh_server(
                up, certs, ", addXForwardedHeaders=true")
            proc = start_proc(impl, conf)
            answers = []
            for name, tcp in (("a.example.", False), ("b.example.", True), ("a.example.", False),
                              ("a.example.", True), ("nxdomain.c.example.", False),
                              ("d.example.", True)):
                ans = query(proc.addr(), name, tcp=tcp)
                assert ans is not None, (impl, name, tcp)
                answers.append((ans.rcode(), sorted(f"{rr.name} {r}" for rr in ans.answer for r in rr)))
            reqs = queries_seen(up)
            seen[impl] = {
                "answers": answers,
                "requests": [request_shape(r) for r in reqs],
                "bodies": [(len(r.body), r.tls, r.proxy) for r in reqs],
                "one connection": len({r.connection for r in reqs}) == 1,
                "sni": set(up.server_names),
                "servers": server_row(proc),
                "metrics": {k: v for k, v in server_metrics(proc).items() if k in STEADY},
                "stats": {k: v for k, v in global_stats(proc).items() if k in GLOBAL},
            }
    assert seen["pydist"] == seen["dnsdist"]
    reqs = seen["dnsdist"]["requests"]
    assert reqs[0][:4] == [(":method", "POST"), (":scheme", "https"), (":authority", "dot.test"),
                           (":path", "/dns-query")]
    assert ("x-forwarded-proto", "dns-over-udp") in reqs[0]
    assert ("x-forwarded-proto", "dns-over-tcp") in reqs[1]
    assert seen["pydist"]["sni"] == {"dot.test"}


def test_udp_answer_larger_than_the_client_size_is_truncated(start_proc: Starter,
                                                            certs: CertSet) -> None:
    def big(req: DoHRequest) -> DoHReply:
        q = dnslib.DNSRecord.parse(req.body)
        r = q.reply()
        for i in range(12):
            r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.TXT, ttl=60,
                                   rdata=dnslib.TXT("x" * 100 + str(i))))
        return DoHReply(body=r.pack())
    got = {}
    for impl in IMPLS:
        with doh_upstream(certs, big) as up:
            proc = start_proc(impl, head() + doh_server(up, certs))
            small = query(proc.addr(), "big.example.", "TXT")
            tcp = query(proc.addr(), "big.example.", "TXT", tcp=True)
            assert small is not None and tcp is not None
            got[impl] = (bool(small.flags & dns.flags.TC), len(small.answer), len(tcp.answer[0]))
    assert got["pydist"] == got["dnsdist"] == (True, 0, 12)


BROKEN = {
    "status 500": dict(status=500),
    "status 404": dict(status=404),
    "text/plain": dict(content_type="text/plain"),          # answered: dnsdist does not look
    "short body": dict(body=b"\x00\x01\x02"),
    "body shorter than content-length": dict(action="truncate"),
    "stream reset": dict(action="reset"),
    "connection closed": dict(action="close"),
    "garbage": dict(action="garbage"),
    "no answer": dict(action="hang"),
}


def _broken_run(impl: str, start_proc: Starter, certs: CertSet, how: dict) -> dict:
    with doh_upstream(certs, answering(**how)) as up:
        proc = start_proc(impl, head() + doh_server(up, certs, ", tcpRecvTimeout=1"))
        udp = query(proc.addr(), "broken-udp.example.", timeout=2.5)
        tcp = query(proc.addr(), "broken-tcp.example.", tcp=True, timeout=2.5)
        # settled once every connection is closed (idle ones after tcpRecvTimeout, as dnsdist)
        metrics = poll_until(lambda: (m := server_metrics(proc))["tcpcurrentconnections"] == 0
                             and m, timeout=8)
        return {"udp": udp is not None, "tcp": tcp is not None,
                "attempts": len(queries_seen(up)),
                "metrics": {k: metrics[k] for k in STEADY + ("tcpreadtimeouts",)},
                "stats": {k: v for k, v in global_stats(proc).items() if k in GLOBAL},
                "alive": proc.alive()}


@pytest.mark.parametrize("what", list(BROKEN))
def test_broken_upstream_answers_counted_and_dropped(what: str, start_proc: Starter,
                                                     certs: CertSet) -> None:
    """Each misbehaviour: the same client outcome, retries and counters as dnsdist 1.7.3."""
    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(IMPLS, pool.map(lambda i: _broken_run(i, start_proc, certs,
                                                               BROKEN[what]), IMPLS)))
    assert runs["pydist"] == runs["dnsdist"], what
    assert runs["pydist"]["alive"]


def test_health_checks_over_doh(start_proc: Starter, certs: CertSet) -> None:
    """Checks go over DoH: a non-200 status marks the server down with nothing said, a short
    answer with dnsdist's reason; a good one up."""
    lines = {}
    for impl in IMPLS:
        with doh_upstream(certs, answering(status=503, checks_too=True)) as bad, \
                doh_upstream(certs, answering(body=b"\x01\x02\x03", checks_too=True)) as short, \
                doh_upstream(certs) as good:
            conf = (head("setVerboseHealthChecks(true)\n") + doh_server(bad, certs, name="bad")
                    + doh_server(short, certs, name="short") + doh_server(good, certs, name="good"))
            proc = start_proc(impl, conf, ready=None)
            proc.wait_for(r"Marking downstream good .* as 'up'")
            proc.wait_for(r"Marking downstream bad .* as 'down'")
            proc.wait_for(r"Invalid health check response of size 3 from backend short", count=2)
            assert all(is_health_check(r) for r in good.received())
            lines[impl] = sorted({line.split(" (127")[0] for line in proc.output.splitlines()
                                  if "health check" in line or "Marking" in line})
            assert query(proc.addr(), "after.example.") is not None
    assert lines["pydist"] == lines["dnsdist"]


def test_proxy_protocol_to_a_doh_server(start_proc: Starter, certs: CertSet) -> None:
    """useProxyProtocol: the header inside TLS before the HTTP/2 preface, a LOCAL one on health
    checks, and a connection of its own for every query."""
    got = {}
    for impl in IMPLS:
        with doh_upstream(certs) as up:
            proc = start_proc(impl, head() + doh_server(up, certs, ", useProxyProtocol=true"))
            for name, tcp in (("p1.example.", False), ("p2.example.", True),
                              ("p3.example.", False)):
                assert query(proc.addr(), name, tcp=tcp) is not None
            reqs = queries_seen(up)
            checks = [r for r in up.received() if is_health_check(r)]
            got[impl] = {"headers": [r.proxy[12:14] for r in reqs],
                         "sources": [r.proxy[16:20] for r in reqs],
                         "connections": len({r.connection for r in reqs}),
                         "check header": {r.proxy for r in checks},
                         "tls": {r.tls for r in reqs}}
    assert got["pydist"] == got["dnsdist"]
    assert got["pydist"]["headers"] == [b"\x21\x12", b"\x21\x11", b"\x21\x12"]
    assert got["pydist"]["connections"] == 3


def test_concurrent_queries_share_one_connection(start_proc: Starter, certs: CertSet) -> None:
    """Queries in flight together go as streams of one HTTP/2 connection."""
    gate = threading.Event()

    def slow(req: DoHRequest) -> DoHReply:
        if not is_health_check(req):
            gate.wait(0.2)
        return DoHReply(body=build_answer(req.body, 0) or b"")
    got = {}
    for impl in IMPLS:
        with doh_upstream(certs, slow) as up:
            proc = start_proc(impl, head() + doh_server(up, certs))
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda i: query(proc.addr(), f"c{i}.example.",
                                                        tcp=bool(i % 2), timeout=5), range(8)))
            assert all(a is not None for a in answers)
            got[impl] = len({r.connection for r in queries_seen(up)})
    assert got["pydist"] == got["dnsdist"] == 1


def test_dohpath_without_tls_is_plain_dns(start_proc: Starter, responder) -> None:
    """dnsdist 1.7.3 ignores dohPath without tls: a Do53 server, UDP and TCP."""
    for impl in IMPLS:
        proc = start_proc(impl, head() + f'newServer{{address="{responder.address}", '
                                         'dohPath="/dns-query"}\n')
        assert query(proc.addr(), f"plain-{impl}.example.") is not None
        assert query(proc.addr(), f"plain-tcp-{impl}.example.", tcp=True) is not None
    transports = {t for q, t, _ in responder.queries if q.startswith("plain")}
    assert transports == {"udp", "tcp"}


def test_certificate_refused_keeps_the_server_down(start_proc: Starter, certs: CertSet) -> None:
    for impl in IMPLS:
        with doh_upstream(certs) as up:
            conf = head() + doh_server(up, certs).replace('subjectName="dot.test"',
                                                          'subjectName="wrong.test"')
            proc = start_proc(impl, conf, ready=r"Marking downstream .* as 'down'")
            if impl == "pydist":
                proc.wait_for(r"TLS handshake with backend doh .* failed: .*hostname mismatch")
            assert console(proc, "showServers()").count(" down ") == 1
            assert not up.received()


def test_dot_and_doh_clients_to_a_doh_server(start_proc: Starter, certs: CertSet) -> None:
    """DoT and DoH (HTTP) listeners in front of a DoH server: answered, and named in
    x-forwarded-proto as dnsdist names them; the counters as dnsdist's."""
    from tests.helpers.doh import client, do, query_wire
    from tests.helpers.dot import dot_query
    got = {}
    for impl in IMPLS:
        with doh_upstream(certs) as up:
            conf = head(f'addTLSLocal("127.0.0.1:{{portdot}}", "{certs.cert}", "{certs.key}")\n'
                        'addDOHLocal("127.0.0.1:{portdoh}")\n') + doh_server(
                up, certs, ", addXForwardedHeaders=true")
            proc = start_proc(impl, conf)
            dot = dot_query(proc.addr("portdot"), "dot.example.", certs.ca_path)
            with client(http2=False, plain=True) as c:
                doh = do(c, f"http://127.0.0.1:{proc.values['portdoh']}", "POST", "/dns-query",
                         query_wire("doh.example."),
                         {"content-type": "application/dns-message"})
            assert dot is not None and doh.status == 200, (impl, doh)
            metrics = server_metrics(proc)
            got[impl] = {"protos": [r.header("x-forwarded-proto") for r in queries_seen(up)],
                         "metrics": {k: metrics[k] for k in STEADY},
                         "stats": {k: v for k, v in global_stats(proc).items() if k in GLOBAL}}
    assert got["pydist"] == got["dnsdist"]
    assert got["pydist"]["protos"] == ["dns-over-tls", "dns-over-http"]


def test_doh_server_added_and_removed_at_runtime(start_proc: Starter, certs: CertSet,
                                                 responder) -> None:
    """newServer() from the console opens a DoH server that serves its pool at once after its
    first check; rmServer() closes it."""
    got = {}
    for impl in IMPLS:
        with doh_upstream(certs) as up:
            proc = start_proc(impl, head('addAction("late.example.", PoolAction("late"))\n')
                              + f'newServer{{address="{responder.address}"}}\n')
            line = doh_server(up, certs, ', pool="late"', name="late").strip()
            console(proc, line)
            poll_until(lambda: any(" late <addr> up " in r for r in server_row(proc)),
                       timeout=8)
            ans = query(proc.addr(), "late.example.", tcp=True)
            rows = server_row(proc)
            console(proc, "rmServer(1)")
            got[impl] = (ans is not None, rows, server_row(proc),
                         len(queries_seen(up)) == 1)
    assert got["pydist"] == got["dnsdist"]
    assert got["pydist"][0] and got["pydist"][3]


TLS_VARIANTS = {
    "no name, no validation": 'validateCertificates=false',
    "sni beside subjectName": 'subjectName="dot.test", sni="sni.test", validateCertificates=false',
    "ciphers": 'subjectName="dot.test", caStore="{ca}", ciphers="ECDHE-RSA-AES256-GCM-SHA384", '
               'ciphersTLS13="TLS_AES_256_GCM_SHA384"',
}


@pytest.mark.parametrize("variant", list(TLS_VARIANTS))
def test_tls_options_of_a_doh_server(variant: str, start_proc: Starter, certs: CertSet) -> None:
    """The DoT backends' TLS options on a DoH server: the SNI sent, the :authority, served."""
    got = {}
    for impl in IMPLS:
        with doh_upstream(certs) as up:
            opts = TLS_VARIANTS[variant].replace("{ca}", certs.ca_path)
            conf = head() + (f'newServer{{address="{up.address()}", tls="openssl", '
                             f'dohPath="/dns-query", name="doh", {opts}}}\n')
            proc = start_proc(impl, conf)
            ans = query(proc.addr(), "tls.example.", tcp=True)
            got[impl] = (ans is not None, set(up.server_names),
                         {r.header(":authority") for r in up.received()})
    assert got["pydist"] == got["dnsdist"]
    assert got["pydist"][0]


def test_refused_connections_are_retried_then_dropped(start_proc: Starter, certs: CertSet,
                                                      port: int) -> None:
    """A DoH server forced up on a closed port: `retries` connects per query, then nothing."""
    got = {}
    for impl in IMPLS:
        conf = head() + (f'newServer{{address="127.0.0.1:{port}", tls="openssl", '
                         f'subjectName="dot.test", caStore="{certs.ca_path}", '
                         'dohPath="/dns-query", name="doh", retries=3}\n'
                         'getServer(0):setUp()\n')
        proc = start_proc(impl, conf, ready="Console ACL")
        udp = query(proc.addr(), "refused.example.")
        tcp = query(proc.addr(), "refused.example.", tcp=True)
        metrics = poll_until(lambda: (m := server_metrics(proc))["tcpnewconnections"] >= 6 and m)
        got[impl] = (udp, tcp, {k: metrics[k] for k in STEADY + ("tcpnewconnections",
                                                                  "tcpcurrentconnections")})
    assert got["pydist"] == got["dnsdist"]
    assert got["pydist"][2]["tcpnewconnections"] == 6
