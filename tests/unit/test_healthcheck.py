"""Health-check query, answer judgement and outcome handling (facts §2.2), without a server."""
from __future__ import annotations

import asyncio
import socket

import pytest

from luaapi.runtime import LuaConfig
from pydist.backend.healthcheck import (
    CheckQuery,
    build_check_query,
    check_once,
    check_response,
    update_health,
)
from pydist.backend.server import DownstreamState
from pydist.dns.wire import text_to_wire
from pydist.registry import CHECK, Registry

NWA = "hc (127.0.0.1:53)"


def server(**opts: object) -> DownstreamState:
    return DownstreamState("127.0.0.1", 53, {"name": "hc", **opts})


def answer(q: CheckQuery, flags: bytes = b"\x81\x80", qid: bytes | None = None) -> bytes:
    return (qid or q.packet[:2]) + flags + q.packet[4:]


def test_check_query_layout() -> None:
    q = build_check_query(server())
    assert q.packet[2:4] == b"\x01\x00"                      # RD only
    assert q.packet[4:12] == b"\x00\x01" + b"\x00" * 6        # one question, no EDNS
    assert q.packet[12:] == text_to_wire("a.root-servers.net.") + b"\x00\x01\x00\x01"
    cd = build_check_query(server(setCD=True, checkName="x.test.", checkType="AAAA",
                                  checkClass=3))
    assert cd.packet[2:4] == b"\x01\x10"
    assert cd.packet[12:] == text_to_wire("x.test.") + b"\x00\x1c\x00\x03"


@pytest.mark.parametrize("flags,opts,reason", [
    (b"\x81\x80", {}, ""),
    (b"\x81\x82", {}, f"Backend {NWA} responded to health check with ServFail"),
    (b"\x81\x83", {}, ""),
    (b"\x81\x83", {"mustResolve": True},
     f"Backend {NWA} responded to health check with NXDomain while mustResolve is set"),
    (b"\x81\x85", {"mustResolve": True},
     f"Backend {NWA} responded to health check with Refused while mustResolve is set"),
    (b"\x01\x80", {}, f"Invalid health check response from backend {NWA}, expecting QR to be set"),
])
def test_answer_judgement_and_reasons(flags: bytes, opts: dict, reason: str) -> None:
    s = server(**opts)
    q = build_check_query(s)
    assert check_response(s, q, answer(q, flags)) == (reason == "", reason)


def test_wrong_id_short_answer_and_other_question() -> None:
    s = server()
    q = build_check_query(s)
    bad_id = bytes([q.packet[0] ^ 0xFF, q.packet[1]])
    assert check_response(s, q, answer(q, qid=bad_id)) == (
        False, f"Invalid health check response id {q.qid} from backend {NWA}, expecting {q.qid}")
    short = check_response(s, q, b"\x00" * 5)[1]
    assert short.startswith("Invalid health check response of size 5")
    other = (q.packet[:2] + b"\x81\x80" + q.packet[4:12] + text_to_wire("b.test.")
             + b"\x00\x1c\x00\x01")
    assert check_response(s, q, other) == (False, (
        f"Backend {NWA} responded to health check with an invalid qname (b.test. vs "
        "a.root-servers.net.), qtype (AAAA vs A) or qclass (1 vs 1)"))
    upper = q.packet[:2] + b"\x81\x80" + q.packet[4:].upper()
    assert check_response(s, q, upper)[0]                  # the name compares case-insensitively


def test_check_function_rewrites_the_query() -> None:
    """The corpus' form: dh:setCD(true); return newDNSName(...), DNSQType.AAAA, qclass."""
    cfg = LuaConfig(Registry(CHECK, log=lambda line: None))
    cfg.run_code('''
      function myHealthCheck(qname, qtype, qclass, dh)
        dh:setCD(true)
        return newDNSName("Other." .. qname:toString()), DNSQType.AAAA, qclass
      end
      newServer({address="127.0.0.1:5399", checkFunction=myHealthCheck})''', "chunk")
    s = cfg.registry.servers[0]
    q = build_check_query(s)
    assert q.packet[2:4] == b"\x01\x10"
    assert q.qname == text_to_wire("Other.a.root-servers.net.") and q.qtype == 28
    assert check_response(s, q, answer(q))[0]


def test_failing_check_function_fails_the_check() -> None:
    cfg = LuaConfig(Registry(CHECK, log=lambda line: None))
    cfg.run_code('newServer({address="127.0.0.1:5399", '
                 'checkFunction=function() error("boom") end})',
                 "chunk")
    outcomes = asyncio.run(check_once(None, cfg.registry.servers[0]))
    assert len(outcomes) == 1 and not outcomes[0][0]
    assert outcomes[0][1].startswith("Error checking the health of backend 127.0.0.1:5399: ")


def test_refused_udp_check_counts_three_failures() -> None:
    """As dnsdist 1.7.3: an ICMP error runs the failure path three times, with these lines."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = DownstreamState("127.0.0.1", port, {"maxCheckFailures": 3})

    async def run() -> list:
        return await check_once(asyncio.get_running_loop(), s)
    outcomes = asyncio.run(run())
    assert [ok for ok, _ in outcomes] == [False, False, False]
    addr = f"127.0.0.1:{port}"
    assert outcomes[0][1] == (f"Error receiving health check response from {addr}: "
                              "Connection refused")
    assert outcomes[1][1] == ("Invalid health check response received from 0.0.0.0:0, expecting "
                              f"one from {addr}")
    assert outcomes[2][1].startswith("Invalid health check response id ")
    s.up_status = True
    logs: list[str] = []
    for ok, _ in outcomes:
        update_health(s, ok, False, logs.append)
    assert logs == [f"Marking downstream {addr} as 'down'"]   # maxCheckFailures=3 in one check


def test_going_down_resets_the_latency_average() -> None:
    s = server()
    s.up_status, s.latency_usec = True, 1234.0
    update_health(s, False, False, lambda line: None)
    assert not s.up_status and s.latency_usec == 0.0
    s.latency_usec = 99.0
    s.set_down()                                  # setDown() resets it too (facts §2)
    assert s.latency_usec == 0.0 and s.status_text() == "DOWN"
    s.set_up()
    assert s.status_text() == "UP" and s.is_up()
    s.set_auto()
    assert s.status_text() == "down" and not s.is_up()


class FakeLoop:
    """Records the check coroutines the checker would start (closed unrun)."""

    def __init__(self) -> None:
        self.started = 0

    def create_task(self, coro: object) -> None:
        self.started += 1
        coro.close()  # type: ignore[attr-defined]


class FakeRegistry:
    def __init__(self, servers: list[DownstreamState]) -> None:
        self.servers = servers
        self.log = lambda line: None


def test_check_interval_counts_ticks_and_skips_a_running_check() -> None:
    from pydist.backend.healthcheck import HealthChecker
    every3, forced = server(checkInterval=3), server()
    forced.set_up()                                   # forced states are never checked
    loop = FakeLoop()
    hc = HealthChecker(loop, FakeRegistry([every3, forced]))
    for _ in range(3):
        hc.tick()
    assert loop.started == 1 and every3 in hc.running
    for _ in range(3):                                # the first one never finished
        hc.tick()
    assert loop.started == 1
    hc.running.clear()
    for _ in range(3):
        hc.tick()
    assert loop.started == 2
