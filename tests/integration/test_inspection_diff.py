"""Console inspection output of pydist vs real dnsdist 1.7.3, driven by real `dnsdist -e`."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import Starter
from tests.helpers.pydist_proc import query

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("%s")
newServer({address="{backend}", name="b1", pool={"", "p2"}, order=1, weight=3})
newServer({address="127.0.0.1:9", name="forced-down", order=2}):setDown()
pc = newPacketCache(1000, {maxTTL=300})
getPool(""):setCache(pc)
addACL("192.0.2.0/24")
""" % KEY


def console(proc: object, conf_path: str, cmd: str) -> str:
    """Run real dnsdist's console client against a running server."""
    res = subprocess.run(["dnsdist", "-C", conf_path, "-e", cmd], capture_output=True,
                         text=True, timeout=10)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _run_both(start_proc: Starter, responder: object, commands: list[str],
              queries: int = 3) -> dict[str, dict[str, str]]:
    outputs: dict[str, dict[str, str]] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, CONF, {"backend": responder.address},
                          ready=r"Accepting control connections")
        for i in range(queries):
            assert query(proc.addr(), f"q{i}.example.") is not None
        assert query(proc.addr(), "q0.example.") is not None  # one cache hit
        conf = str(proc.conf)
        outputs[impl] = {c: console(proc, conf, c) for c in commands}
        proc.stop()
    return outputs


def _mask_rates(text: str) -> str:
    """Latency and rate columns move with timing; everything else must be identical."""
    lines = []
    for line in text.splitlines():
        if re.match(r"^\d+\s", line):
            line = line[:61] + "QPS    " + line[68:103] + "DRATE LAT  " + line[114:]
        lines.append(line)
    return "\n".join(lines)


def test_show_servers_acl_pools_identical(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder,
                    ["showServers()", "showACL()", "showPools()", "showVersion()",
                     "showServerPolicy()", "getServer(0)", "showConsoleACL()"])
    d, p = out["dnsdist"], out["pydist"]
    assert _mask_rates(p["showServers()"]) == _mask_rates(d["showServers()"])
    for cmd in ("showACL()", "showVersion()", "showServerPolicy()", "getServer(0)",
                "showConsoleACL()"):
        assert p[cmd] == d[cmd], cmd
    # the cache column shows entries/max, identical traffic gives identical entries
    assert p["showPools()"] == d["showPools()"]


def test_dump_stats_names_and_layout(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder, ["dumpStats()"])

    def shape(text: str) -> list[tuple[str, ...]]:
        # names in place, numbers replaced by their column width
        return [tuple(re.sub(r"[-\d.]+(?=\s|$)", lambda m: "#" * len(m.group()), cell)
                      for cell in re.findall(r"([a-z][a-z0-9-]*\s*\t\s*[-\d.]+)", line))
                for line in text.splitlines()]
    d_names = re.findall(r"([a-z][a-z0-9-]+)\s*\t", out["dnsdist"]["dumpStats()"])
    p_names = re.findall(r"([a-z][a-z0-9-]+)\s*\t", out["pydist"]["dumpStats()"])
    assert p_names == d_names
    assert len(p_names) == 64
    d_lines = out["dnsdist"]["dumpStats()"].splitlines()
    p_lines = out["pydist"]["dumpStats()"].splitlines()
    assert len(p_lines) == len(d_lines)
    for pl, dl in zip(p_lines, d_lines):
        # same column positions: names start at 0 and 51, values right-aligned to the same end
        assert pl.index("\t") == dl.index("\t")
    _ = shape


def test_traffic_counters_agree(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder, ["dumpStats()"], queries=4)

    def counters(text: str) -> dict[str, str]:
        return dict(re.findall(r"([a-z][a-z0-9-]+)\s*\t\s*([-\d.]+)", text))
    d, p = counters(out["dnsdist"]["dumpStats()"]), counters(out["pydist"]["dumpStats()"])
    for name in ("queries", "responses", "cache-hits", "cache-misses", "rdqueries",
                 "frontend-noerror", "acl-drops", "no-policy", "noncompliant-queries"):
        assert p[name] == d[name], name


@pytest.mark.parametrize("cmd,expected", [
    ("nosuch()", "Error: [string \"return nosuch()\"]:1: attempt to call global 'nosuch' (a nil value)"),
    ("foo(", "Error: [string \"foo(\"]:1: unexpected symbol near '<eof>': "),
])
def test_console_errors_identical(start_proc: Starter, responder: object, cmd: str,
                                  expected: str) -> None:
    out = _run_both(start_proc, responder, [cmd], queries=0)
    assert out["pydist"][cmd] == out["dnsdist"][cmd]
    assert out["pydist"][cmd].startswith(expected)


def test_make_key_shape(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder, ["makeKey()"], queries=0)
    for impl in ("dnsdist", "pydist"):
        assert re.fullmatch(r'setKey\("[A-Za-z0-9+/]{43}="\)\n', out[impl]["makeKey()"])


TOP_CMDS = ["topQueries()", "topClients()", "topResponses()", "topQueries(1)",
            "topSlow(10, 0)", "topSlow(1, 0, 1)", "topSlow()", "topBandwidth()", "topBandwidth(0)"]


def test_top_tables_identical(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder, TOP_CMDS, queries=2)
    for cmd in TOP_CMDS:
        assert out["pydist"][cmd] == out["dnsdist"][cmd], cmd
    assert "q0.example." in out["pydist"]["topQueries()"]
    assert "q1.example." in out["pydist"]["topSlow(10, 0)"]       # a backend answer takes > 0 ms
    assert "127.0.0.1" in out["pydist"]["topBandwidth()"]


def _mask_grepq(text: str) -> list[str]:
    """Time, client port, ID and latency move with the run; columns and the rest must match."""
    rows = []
    for line in text.splitlines():
        if line.startswith("Time"):
            rows.append(line)
            continue
        m = re.match(r"^(-?\d+\.\d) +(\S+):\d+ +(\S+) +(\S*) +\d+ +(\S+) +(\S+) +([\d.]+|T\.O)? +"
                     r"(.*)$", line)
        assert m, line
        rows.append("|".join((m.group(2), m.group(3), m.group(4), m.group(5), m.group(6),
                              "LAT" if m.group(7) else "", m.group(8).strip())))
        assert line[56:61] in ("DoUDP", "DoTCP"), line  # fixed-width columns as dnsdist's
    return rows


GREPQ_CMDS = ['grepq("127.0.0.1")', 'grepq("q1.example")', 'grepq({"q0.example.", "127.0.0.0/8"}, 1)',
              'grepq("bad..name")', 'grepq("1000ms")', 'grepq("192.0.2.0/24")']


def test_grepq_identical(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder, GREPQ_CMDS, queries=3)
    d, p = out["dnsdist"], out["pydist"]
    assert p['grepq("bad..name")'] == d['grepq("bad..name")']
    assert p['grepq("bad..name")'].startswith("Could not parse 'bad..name'")
    for cmd in GREPQ_CMDS:
        if cmd != 'grepq("bad..name")':
            # same rows; their order may differ where dnsdist's coarse clock gives a query and
            # the previous answer one timestamp (its multimap then lists queries first)
            assert sorted(_mask_grepq(p[cmd])) == sorted(_mask_grepq(d[cmd])), cmd
            times = [float(ln.split()[0]) for ln in p[cmd].splitlines()[1:]]
            assert times == sorted(times), cmd   # oldest first, as dnsdist lists them
    rows = _mask_grepq(p['grepq("127.0.0.1")'])
    assert sum("Question" in r for r in rows) == 4 and sum("No Error. 1 answers" in r for r in rows) == 3
    assert len(_mask_grepq(p['grepq({"q0.example.", "127.0.0.0/8"}, 1)'])) == 3


def test_show_response_latency_shape(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder, ["showResponseLatency()"], queries=3)

    def shape(text: str) -> list[str]:
        return [re.sub(r"[*:.]+$", "", re.sub(r"\d+\.\d\d msec", "N msec", ln))
                for ln in text.splitlines()]
    d, p = out["dnsdist"]["showResponseLatency()"], out["pydist"]["showResponseLatency()"]
    assert shape(p) == shape(d)
    assert p.startswith("Average response latency: ") and p.count("*") >= 70


def test_show_servers_with_uuids(start_proc: Starter, responder: object) -> None:
    cmd = "showServers({showUUIDs=true})"
    out = _run_both(start_proc, responder, [cmd])
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

    def mask(text: str) -> str:
        assert len(uuid.findall(text)) == 2  # one per server, in the second column
        lines = []
        for line in uuid.sub("U" * 36, text).splitlines():
            if re.match(r"^\d+\s", line):
                line = line[:98] + "QPS    " + line[105:140] + "DRATE LAT  " + line[151:]
            lines.append(line)
        return "\n".join(lines)
    assert mask(out["pydist"][cmd]) == mask(out["dnsdist"][cmd])
    assert out["pydist"][cmd].startswith("#   UUID ")


def _column_starts(line: str) -> list[int]:
    return [m.start() for m in re.finditer(r"(?:(?<=\s\s)|^)\S", line)]


def test_show_tcp_stats_layout_and_security_status(start_proc: Starter, responder: object) -> None:
    out = _run_both(start_proc, responder, ["showTCPStats()", "showSecurityStatus()"], queries=1)
    d, p = out["dnsdist"]["showTCPStats()"], out["pydist"]["showTCPStats()"]
    dl, pl = d.splitlines(), p.splitlines()
    assert len(pl) == len(dl) == 12  # workers, 2 frontends, 2 backends, titles and blanks
    for a, b in zip(pl, dl):
        if b.startswith(("#", "Workers", "Frontends", "Backends")) or not b:
            assert a == b  # headers byte-identical
        else:
            assert _column_starts(a) == _column_starts(b) and len(a) == len(b), (a, b)
    assert out["pydist"]["showSecurityStatus()"] == out["dnsdist"]["showSecurityStatus()"] == "0\n"


def test_server_methods_cache_stats_and_shutdown(start_proc: Starter, responder: object) -> None:
    cmds = ['getPool(""):getCache():printStats()', "getServer(0):getOutstanding()",
            "getServer(0):getNameWithAddr()", "getServer(0):getName()", 'getServer(0):addPool("x")',
            "showPools()", 'getServer(0):rmPool("x")', "getServer(0):setDown()", "showServers()",
            "getServer(0):setAuto()", 'show("hi")', "getServer(0).order", "getBindCount()",
            "shutdown()"]
    out = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, CONF, {"backend": responder.address},
                          ready=r"Accepting control connections")
        assert query(proc.addr(), "q0.example.") is not None
        assert query(proc.addr(), "q0.example.") is not None
        out[impl] = {c: console(proc, str(proc.conf), c) for c in cmds}
        assert proc.wait_exit(10) == 0  # shutdown() ends the process with 0
    for c in cmds:
        if c == "showServers()":
            assert _mask_rates(out["pydist"][c]) == _mask_rates(out["dnsdist"][c])
        else:
            assert out["pydist"][c] == out["dnsdist"][c], c
    assert out["pydist"]["shutdown()"] == "Connection closed by the server.\n"
    assert "Hits: 1" in out["pydist"]['getPool(""):getCache():printStats()']
