"""pydist-compare end to end: equivalent configs, planted differences, bad input, cleanup.

Side B is the command in $PYDIST_CMD (default: this checkout's pydist; set it to `dnsdist` to
check the comparer itself with real dnsdist on both sides).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import sys
from pathlib import Path

import dns.message
import dpkt
import pytest

from pydist.compare.cli import main

PYDIST_CMD = os.environ.get("PYDIST_CMD", f"{sys.executable} -m pydist")

pytestmark = pytest.mark.skipif(shutil.which("dnsdist") is None, reason="real dnsdist 1.7.3 is not installed")

CONFIG = """
-- a config whose upstreams are all public: the comparer must move them to its responder
newServer({address="9.9.9.9", name="quad9"})
newServer({address="192.0.2.200:5353", pool="special"})
setLocal("0.0.0.0:53")
controlSocket("0.0.0.0:5199")
webserver("0.0.0.0:8083")
setWebserverConfig({password="secret"})
getPool(""):setCache(newPacketCache(1000, {maxTTL=86400}))
addAction("blocked.example.", RCodeAction(DNSRCode.REFUSED))
addAction("spoofed.example.", SpoofAction("192.0.2.99"))
addAction("special.example.", PoolAction("special"))
addAction(AndRule({QTypeRule("TXT"), MaxQPSIPRule(1000)}), NoneAction())
"""

QUERIES = """\
# comment lines and blank lines are ignored

example.com A
example.com A
example.com A +tcp
example.net AAAA +do
example.org TXT -rd +cd
blocked.example A
spoofed.example A src=127.0.0.7
special.example A
nxdomain.invalid A
"""


def _children() -> list[int]:
    """Processes whose parent is this test process (the comparer runs in-process)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.append(int(entry))
    return found


@pytest.fixture
def setup(tmp_path: Path):
    conf = tmp_path / "dnsdist.conf"
    conf.write_text(CONFIG)
    queries = tmp_path / "queries.txt"
    queries.write_text(QUERIES)
    yield tmp_path, conf, queries
    assert _children() == [], "the comparer left processes running"


def _run(tmp_path: Path, conf: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    code = main(["-C", str(conf), "--pydist", PYDIST_CMD, "--report", str(report), "--timeout", "1", *extra])
    return code, json.loads(report.read_text())


def test_equivalent_with_console_and_metrics(setup, capsys):
    tmp_path, conf, queries = setup
    before = conf.read_text()
    code, report = _run(tmp_path, conf, "--queries", str(queries), "--console", "showServers()",
                        "--console", "showRules()", "--metrics")
    out = capsys.readouterr().out
    assert code == 0, out
    assert report["verdict"] == "equivalent" and report["differences"] == []
    assert report["queries_sent"] == 9
    assert "EQUIVALENT" in out
    assert conf.read_text() == before, "the user's file must never be modified"


def test_planted_rule_is_reported_with_the_query(setup, capsys):
    tmp_path, conf, queries = setup
    code, report = _run(tmp_path, conf, "--queries", str(queries),
                        "--extra-lua-b", "addAction(AllRule(), RCodeAction(5))\nmvRule(4, 0)")
    out = capsys.readouterr().out
    assert code == 1
    assert report["verdict"] == "different"
    assert report["counts"].get("rcode", 0) >= 5
    rcode = [d for d in report["differences"] if d["kind"] == "rcode"]
    assert "REFUSED" in rcode[0]["detail"] and "example.com. A (udp)" in rcode[0]["where"]
    assert "rcode:" in out and "shown by: example.com. A" in out


def test_cache_ttl_changed_on_one_side(setup):
    tmp_path, conf, _ = setup
    queries = tmp_path / "cache.txt"
    queries.write_text("cached.example A\ncached.example A\ncached.example A\n")
    code, report = _run(tmp_path, conf, "--queries", str(queries), "--rate", "0.8", "--metrics",
                        "--extra-lua-b", 'getPool(""):setCache(newPacketCache(1000, {minTTL=600}))')
    assert code == 1
    assert "ttl" in report["counts"], report["counts"]
    hits = [d for d in report["differences"] if d["kind"] == "metric-value" and "cache_hits" in d["detail"]]
    assert hits, report["differences"]


def test_console_output_difference(setup):
    tmp_path, conf, queries = setup
    code, report = _run(tmp_path, conf, "--console", "showServers()", "--console", "showRules()",
                        "--extra-lua-b", 'newServer({address="198.51.100.9", name="extra"})')
    assert code == 1
    consoles = [d for d in report["differences"] if d["kind"] == "console"]
    assert [d["where"] for d in consoles] == ["showServers()"]
    assert "extra" in consoles[0]["detail"]


def test_config_rejected_by_one_side(setup):
    tmp_path, conf, _ = setup
    code, report = _run(tmp_path, conf, "--extra-lua-b", 'error("planted failure")')
    assert code == 1
    assert report["counts"]["check-config-verdict"] == 1
    messages = [d["detail"] for d in report["differences"] if d["kind"] == "check-config-message"]
    assert any("planted failure" in m for m in messages)
    assert report["queries_sent"] == 0


def test_config_rejected_by_both_sides_is_equivalent(tmp_path):
    conf = tmp_path / "broken.conf"
    conf.write_text('newServer({address="127.0.0.1:5300"})\nthisFunctionDoesNotExist()\n')
    code, report = _run(tmp_path, conf)
    assert code == 0
    assert report["note"] == "both sides reject the configuration"
    assert _children() == []


def _fake(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-side"
    script.write_text("#!/bin/sh\ncase \"$*\" in *--check-config*) echo ok; exit 0;; esac\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_side_that_fails_to_start_exits_2_with_its_log(setup, capsys):
    tmp_path, conf, _ = setup
    fake = _fake(tmp_path, 'echo "Fatal error: binding socket to 127.0.0.1:53: planted"\nexit 1\n')
    code = main(["-C", str(conf), "--pydist", fake, "--report", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 2
    assert "FAILED: pydist at start" in out and "planted" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["failures"][0]["stage"] == "start"


def test_side_that_hangs_is_stopped(setup, capsys):
    tmp_path, conf, _ = setup
    fake = _fake(tmp_path, "exec sleep 300\n")
    code = main(["-C", str(conf), "--pydist", fake, "--start-timeout", "2"])
    assert code == 2
    assert "hung" in capsys.readouterr().out


def _pcap(path: Path, names: list[tuple[str, str, bool]]) -> None:
    with open(path, "wb") as handle:
        writer = dpkt.pcap.Writer(handle)
        for i, (name, qtype, tcp) in enumerate(names):
            wire = dns.message.make_query(name, qtype).to_wire()
            if tcp:
                seg = dpkt.tcp.TCP(sport=40000 + i, dport=53, flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                                   data=struct.pack("!H", len(wire)) + wire)
                proto = dpkt.ip.IP_PROTO_TCP
            else:
                seg = dpkt.udp.UDP(sport=40000 + i, dport=53, data=wire)
                seg.ulen = len(seg)
                proto = dpkt.ip.IP_PROTO_UDP
            ip = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 53]), p=proto, data=seg)
            ip.len = len(ip)
            writer.writepkt(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x01" * 6,
                                                   type=dpkt.ethernet.ETH_TYPE_IP, data=ip), ts=float(i))


def test_pcap_replay_and_bad_input(setup, capsys):
    tmp_path, conf, queries = setup
    pcap = tmp_path / "clients.pcap"
    _pcap(pcap, [("example.com", "A", False), ("blocked.example", "A", True), ("example.net", "AAAA", False)])
    bad_queries = tmp_path / "bad.txt"
    bad_queries.write_text("example.com A\nthis is bad\n")
    code, report = _run(tmp_path, conf, "--pcap", str(pcap), "--queries", str(bad_queries))
    assert code == 0
    assert report["queries_sent"] == 4
    assert report["bad_input"] == [{"origin": f"{bad_queries}:2",
                                    "reason": "unknown query type 'is': 'this is bad'"}]
    unreadable = tmp_path / "junk.pcap"
    unreadable.write_bytes(b"junk")
    assert main(["-C", str(conf), "--pydist", PYDIST_CMD, "--pcap", str(unreadable)]) == 2
    assert "not a pcap" in capsys.readouterr().err


DOT_CONFIG = """
newServer({address="9.9.9.9"})
setLocal("0.0.0.0:53")
addTLSLocal("0.0.0.0:853", "/etc/letsencrypt/live/absent/fullchain.pem",
            "/etc/letsencrypt/live/absent/privkey.pem")
getPool(""):setCache(newPacketCache(100))
addAction("blocked.example.", RCodeAction(DNSRCode.REFUSED))
"""


DOH_CONFIG = """
newServer({address="9.9.9.9"})
setLocal("0.0.0.0:53")
addDOHLocal("0.0.0.0:443", "/etc/letsencrypt/live/absent/fullchain.pem",
            "/etc/letsencrypt/live/absent/privkey.pem", {"/q"})
getPool(""):setCache(newPacketCache(100))
addAction("blocked.example.", RCodeAction(DNSRCode.REFUSED))
"""


@pytest.mark.parametrize("config,flag,substitution", [
    (DOT_CONFIG, "tls", "throwaway certificate"),
    (DOH_CONFIG, "https", "run as plain DoH over HTTP"),
], ids=["dot", "doh"])
def test_encrypted_queries_replayed(tmp_path, capsys, config: str, flag: str,
                                    substitution: str):
    """+tls queries go to each side's addTLSLocal listener (served with a generated certificate
    when the config's files are absent), +https ones are POSTed to the first addDOHLocal URL
    (plain HTTP when they are absent); a rule planted on one side shows over that transport."""
    conf = tmp_path / f"{flag}.conf"
    conf.write_text(config)
    queries = tmp_path / f"{flag}.txt"
    queries.write_text(f"example.com A +{flag}\nexample.com A +{flag}\n"
                       f"blocked.example A +{flag}\n")
    code, report = _run(tmp_path, conf, "--queries", str(queries), "--metrics")
    assert code == 0, capsys.readouterr().out
    assert report["queries_sent"] == 3
    assert any(substitution in n for n in report["not_comparable"])
    code, report = _run(tmp_path, conf, "--queries", str(queries),
                        "--extra-lua-b", 'addAction("example.com.", RCodeAction(DNSRCode.NXDOMAIN))')
    assert code == 1
    where = [d["where"] for d in report["differences"] if d["kind"] == "rcode"]
    assert where and all(f"({flag})" in w for w in where), report["differences"]


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_terminated_comparer_leaves_nothing_running(setup):
    """SIGTERM to pydist-compare mid-replay: both servers it started are stopped with it."""
    import signal
    import subprocess
    from tests.helpers.pydist_proc import poll_until
    tmp_path, conf, _ = setup
    queries = tmp_path / "slow.txt"
    queries.write_text("example.com A\n" * 200)
    proc = subprocess.Popen([sys.executable, "-m", "pydist.compare", "-C", str(conf), "--pydist",
                             PYDIST_CMD, "--queries", str(queries), "--rate", "5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        sides = poll_until(lambda: (lambda c: c if len(c) >= 2 else None)(_children_of(proc.pid)),
                           timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 128 + signal.SIGTERM
        assert poll_until(lambda: not any(_running(p) for p in sides), timeout=10)
    finally:
        proc.kill()
        proc.wait()


def test_absent_ticket_key_file_is_replaced_for_both_sides(tmp_path, capsys):
    """A ticketKeyFile that is not on this machine becomes one throwaway key shared by both
    sides. Dropping it instead, with ticketsKeysRotationDelay=0, left 1.7.3 without any key
    and it crashed during the replay (corpus config 19)."""
    conf = tmp_path / "tickets.conf"
    conf.write_text(DOT_CONFIG.replace(
        '"/etc/letsencrypt/live/absent/privkey.pem")',
        '"/etc/letsencrypt/live/absent/privkey.pem", {ticketsKeysRotationDelay=0, '
        'ticketKeyFile="/etc/dnsdist/absent-tickets.key"})'))
    queries = tmp_path / "dot.txt"
    queries.write_text("example.com A +tls\nexample.net AAAA +tls\nexample.com A\n")
    code, report = _run(tmp_path, conf, "--queries", str(queries))
    assert code == 0, capsys.readouterr().out
    assert report["queries_sent"] == 3 and not report.get("failures")
    assert any("ticketKeyFile replaced by a throwaway key file" in n
               for n in report["not_comparable"])


DOH_BACKEND_CONFIG = """
newServer({address="9.9.9.10:443", tls="openssl", subjectName="dns.quad9.test",
           caStore="/nonexistent/ca.pem", dohPath="/dns-query", pool="doh"})
newServer({address="192.0.2.53"})
setLocal("0.0.0.0:53")
addAction("doh.example.", PoolAction("doh"))
getPool("doh"):setCache(newPacketCache(100))
"""


def test_doh_upstreams_go_to_the_doh_responder(tmp_path, capsys, monkeypatch):
    """A DoH server (tls and dohPath) is moved to the comparer's loopback DoH responder, its
    certificate validation turned off (the CA store named is not on this machine either), and
    both sides' queries for its pool reach it over HTTP/2."""
    import pydist.compare.session as session
    made: list = []

    class Recording(session.DoHResponder):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            made.append(self)
    monkeypatch.setattr(session, "DoHResponder", Recording)
    conf = tmp_path / "doh-backend.conf"
    conf.write_text(DOH_BACKEND_CONFIG)
    queries = tmp_path / "q.txt"
    queries.write_text("doh.example A\ndoh.example A\ndoh.example A +tcp\nother.example A\n")
    code, report = _run(tmp_path, conf, "--queries", str(queries), "--metrics",
                        "--console", "showServers()")
    assert code == 0, capsys.readouterr().out
    assert any("9.9.9.10:443: certificate validation off for the DoH responder" in n
               for n in report["not_comparable"])
    bodies = [r for r in made[0].received() if b"\x03doh\x07example" in r.body]
    # per side: the first UDP query and the TCP one (own cache key); the repeat is a hit
    assert len(bodies) == 4 and all(r.tls for r in bodies)
