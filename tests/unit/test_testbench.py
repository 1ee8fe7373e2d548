"""The rules test bench (pydist-test): traces of a ten-rule config, expectations, exit codes,
pcap input. No network: backends are the bench's stand-ins."""
from __future__ import annotations

import socket
from pathlib import Path

import dpkt
import pytest

from pydist.testbench.bench import TestBench
from pydist.testbench.cases import CaseError, parse_case, parse_cases
from pydist.testbench.cli import load_config, main
from pydist.testbench.report import failures

DATA = Path(__file__).resolve().parent.parent / "data"
CONF = str(DATA / "testbench.conf")
CASES = str(DATA / "testbench.cases")


@pytest.fixture
def bench() -> TestBench:
    return TestBench(load_config(CONF))


def run(bench: TestBench, line: str):
    case = parse_case(line, 1)
    assert case is not None
    return bench.run(case)


def test_every_case_of_the_file_is_met(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", CONF, CASES]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("14 cases, 14 with expectations, 0 failed")
    assert "FAIL" not in out


@pytest.mark.parametrize("line,rule,pool,outcome", [
    ("blocked.test A", "exact-drop", None, "drop"),
    ("x.ads.test A", "blocklist", None, "answer"),
    ("example.test ANY", "any-to-tcp", None, "answer"),
    ("a.test A client=10.9.8.7", "tenner", "abuse", "forward"),
    ("0123456789abcdef0123456789.t.test A", "tunnel", None, "drop"),
    ("m.test TXT transport=tcp", "txt-over-tcp", "secure", "forward"),
    ("s.test A do=1", "do-bit", "secure", "forward"),
    ("lua.test A", "lua-spoof", None, "answer"),
    ("dead.test A", "to-dead", "dead", "no-server"),
    ("plain.test A", None, "", "forward"),
])
def test_matched_rule_pool_and_outcome(bench: TestBench, line: str, rule: str | None,
                                       pool: str | None, outcome: str) -> None:
    trace = run(bench, line)
    decided = trace.deciding_rule
    assert (decided[1].name if decided else None) == rule
    assert trace.pool == pool
    assert trace.outcome == outcome


def test_trace_names_position_uuid_selector_and_action_as_showrules(bench: TestBench) -> None:
    trace = run(bench, "www.tracker.test A")
    pos, rule = trace.deciding_rule
    assert pos == 1 and len(rule.uuid) == 36
    assert str(rule.selector) == "qname in tracker.test., ads.test."
    assert str(rule.action) == "set rcode 3"
    assert trace.rcode == 3


def test_second_query_is_a_cache_hit_and_backend_mode_is_used(bench: TestBench) -> None:
    assert run(bench, "c.test A").outcome == "forward"
    assert run(bench, "c.test A").outcome == "cache-hit"
    nx = run(bench, "other.test A backend=servfail")
    assert nx.outcome == "forward" and nx.rcode == 2
    assert run(bench, "silent.test A backend=drop").answer is None


def test_a_failing_expectation_gives_exit_1_and_names_the_case(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "c.txt"
    cases.write_text("blocked.test A expect=drop\nwww.ads.test A expect=NOERROR rule=tenner\n")
    assert main(["-C", CONF, "-q", str(cases)]) == 1
    out = capsys.readouterr().out
    assert "FAIL case 2 (www.ads.test A expect=NOERROR rule=tenner): expected expect=NOERROR, got NXDOMAIN" in out
    assert "expected rule=tenner, got 1 ('blocklist')" in out
    assert "case 1:" not in out        # --quiet: the met case is not printed
    assert out.strip().endswith("2 cases, 2 with expectations, 1 failed")


def test_expectations_checked_one_by_one(bench: TestBench) -> None:
    trace = run(bench, "a.test A client=10.1.1.1 pool=abuse server=abuse1 rule=3 expect=forward")
    assert failures(trace) == []
    trace = run(bench, "a.test A client=10.1.1.1 pool= server=general")
    assert failures(trace) == ["expected pool=, got 'abuse'",
                               "expected server=general, got abuse1 (127.0.0.1:5302)"]


def _pcap(path: Path) -> None:
    """Two UDP queries and one TCP query (split over two segments) to port 53."""
    import dnslib
    writer = dpkt.pcap.Writer(path.open("wb"))

    def ip(src: str, payload: dpkt.Packet, proto: int) -> bytes:
        pkt = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton("192.0.2.53"), p=proto,
                         data=payload)
        pkt.len = len(bytes(pkt))
        return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=pkt))
    for n, (src, name) in enumerate([("10.7.7.7", "x.test"), ("127.0.0.1", "blocked.test")]):
        q = bytes(dnslib.DNSRecord.question(name, "A").pack())
        writer.writepkt(ip(src, dpkt.udp.UDP(sport=4000 + n, dport=53, data=q), 17), ts=n)
    q = bytes(dnslib.DNSRecord.question("m.test", "TXT").pack())
    framed = len(q).to_bytes(2, "big") + q
    syn = dpkt.tcp.TCP(sport=5000, dport=53, seq=100, flags=dpkt.tcp.TH_SYN)
    writer.writepkt(ip("127.0.0.1", syn, 6), ts=3)
    for seq, part in ((101, framed[:5]), (106, framed[5:])):
        seg = dpkt.tcp.TCP(sport=5000, dport=53, seq=seq, flags=dpkt.tcp.TH_ACK, data=part)
        writer.writepkt(ip("127.0.0.1", seg, 6), ts=4)
    writer.close()


def test_pcap_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = tmp_path / "q.pcap"
    _pcap(pcap)
    assert main(["-C", CONF, "--pcap", str(pcap)]) == 0
    out = capsys.readouterr().out
    assert "case 1: x.test. A from 10.7.7.7 over udp" in out
    assert "pool 'abuse', server abuse1" in out            # the captured source was used
    assert "case 2: blocked.test. A from 127.0.0.1 over udp" in out and "outcome: drop" in out
    assert "case 3: m.test. TXT from 127.0.0.1 over tcp" in out
    assert "pool 'secure', server secure1" in out
    assert out.strip().endswith("3 cases, 0 with expectations, 0 failed")


def test_unreadable_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_conf = tmp_path / "bad.conf"
    bad_conf.write_text("newServer(\n")
    assert main(["-C", str(bad_conf), CASES]) == 2
    assert "Fatal error: [string \"chunk\"]:2: unexpected symbol" in capsys.readouterr().err
    bad_cases = tmp_path / "bad.txt"
    bad_cases.write_text("a.test A transport=carrier-pigeon\n")
    assert main(["-C", CONF, str(bad_cases)]) == 2
    assert "line 1: transport must be one of udp, tcp, dot, doh" in capsys.readouterr().err
    assert main(["-C", CONF, "--pcap", str(bad_cases)]) == 2


@pytest.mark.parametrize("line,message", [
    ("a.test A bufsize=12", "line 3: bufsize= takes 512 to 65535"),
    ("a.test A do=maybe", "line 3: do= takes 0 or 1, not 'maybe'"),
    ("a.test A colour=red", "line 3: unknown key 'colour'"),
    ("a.test A loose", "line 3: 'loose' is not key=value"),
])
def test_bad_case_lines(line: str, message: str) -> None:
    with pytest.raises(CaseError, match=message):
        parse_cases("# comment\n\n" + line)


def test_unknown_qtype_and_missing_listener_are_reported(bench: TestBench) -> None:
    assert run(bench, "a.test NOSUCHTYPE").outcome == "error"
    bench.reg.frontends = [f for f in bench.reg.frontends if f.kind != "tls"]
    trace = run(bench, "a.test A transport=dot")
    assert trace.outcome == "error" and "no addTLSLocal" in trace.error
