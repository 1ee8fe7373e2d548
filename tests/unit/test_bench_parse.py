"""tools/benchlib: the dnsperf output parser and the statistics helpers (no process is run)."""

from __future__ import annotations

import pytest

from tools.benchlib import dnsperf, stats
from tools.benchlib.runner import RunResult, SideResult

# dnsperf 2.10 (Debian 12) output of a plain run.
SUMMARY = """\
DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 15354 -d hits.txt -l 2 -c 4 -q 100
[Status] Sending queries (to 127.0.0.1:15354)
[Status] Started at: Thu Nov 26 11:45:12 2026
[Status] Stopping after 2.000000 seconds
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         273206
  Queries completed:    273200 (100.00%)
  Queries lost:         6 (0.00%)

  Response codes:       NOERROR 273190 (99.99%), SERVFAIL 10 (0.01%)
  Average packet size:  request 34, response 50
  Run time (s):         2.000108
  Queries per second:   136595.623836

  Average Latency (s):  0.000282 (min 0.000016, max 0.002347)
  Latency StdDev (s):   0.000184
"""

VERBOSE_LINES = """\
[Status] Stopping after 1.000000 seconds
> NOERROR h1.bench.example. A 0.000256
> NOERROR h2.bench.example. A 0.000162
> T h3.bench.example. A
> SERVFAIL h4.bench.example. A 0.000122
"""


def test_parse_summary() -> None:
    r = dnsperf.parse_output(SUMMARY)
    assert (r.sent, r.completed, r.lost) == (273206, 273200, 6)
    assert r.qps == pytest.approx(136595.623836)
    assert r.run_time == pytest.approx(2.000108)
    assert r.avg_latency == pytest.approx(0.000282)
    assert r.rcodes == {"NOERROR": 273190, "SERVFAIL": 10}
    assert r.latencies == []


def test_parse_verbose_latencies_sorted_and_lost_skipped() -> None:
    r = dnsperf.parse_output(VERBOSE_LINES + SUMMARY)
    assert r.latencies == [0.000122, 0.000162, 0.000256]


def test_parse_missing_statistics_raises() -> None:
    with pytest.raises(dnsperf.DnsperfOutputError):
        dnsperf.parse_output("Error: invalid argument\n")


def test_command_is_bounded_and_loopback() -> None:
    cmd = dnsperf.command(5300, "q.txt", seconds=2, max_passes=7, tcp=True, rate=10000, verbose=True)
    assert cmd[:5] == ["dnsperf", "-s", "127.0.0.1", "-p", "5300"]
    assert cmd[cmd.index("-l") + 1] == "2" and cmd[cmd.index("-n") + 1] == "7"
    assert ["-m", "tcp"] == cmd[cmd.index("-m"):cmd.index("-m") + 2]
    assert cmd[cmd.index("-Q") + 1] == "10000" and "-v" in cmd


@pytest.mark.parametrize(("values", "expected"), [
    ([], None), ([3.0], 3.0), ([3.0, 1.0, 2.0], 2.0), ([4.0, 1.0, 3.0, 2.0], 2.5),
    ([1.0, float("nan"), 5.0], 3.0),
])
def test_median(values: list[float], expected: float | None) -> None:
    assert stats.median(values) == expected


def test_percentile_nearest_rank() -> None:
    data = [float(i) for i in range(1, 101)]
    assert stats.percentile(data, 50) == 50.0
    assert stats.percentile(data, 99) == 99.0
    assert stats.percentile(data, 100) == 100.0
    assert stats.percentile(data, 0) == 1.0
    assert stats.percentile([], 50) is None
    with pytest.raises(ValueError):
        stats.percentile(data, 101)


def test_ratio() -> None:
    assert stats.ratio(2.0, 4.0) == 0.5
    assert stats.ratio(None, 4.0) is None
    assert stats.ratio(1.0, 0) is None


def test_side_medians() -> None:
    side = SideResult(runs=[
        RunResult(qps=q, completed=100, lost=0, run_time=1.0, cpu_s=0.1, us_per_query=u, rss_kib=r)
        for q, u, r in ((100.0, 3.0, 1000), (300.0, 1.0, 3000), (200.0, 2.0, 2000))
    ])
    m = side.medians()
    assert (m["qps"], m["us_per_query"], m["rss_kib"]) == (200.0, 2.0, 2000)
    assert m["p50_us"] is None


def test_noise_notes_flag_busy_server_core() -> None:
    from tools.benchlib import report

    def side(load: float) -> SideResult:
        return SideResult(runs=[RunResult(qps=1.0, completed=1, lost=0, run_time=1.0, cpu_s=0.0,
                                          us_per_query=1.0, rss_kib=1, other_load=load)])

    assert report.noise_notes({"udp-hit": {"pydist": side(0.01), "dnsdist": side(0.0)}}) == []
    notes = report.noise_notes({"udp-hit": {"pydist": side(0.26), "dnsdist": side(0.03)}})
    assert len(notes) == 1 and "pydist up to 26%" in notes[0]


def test_rcode_notes_report_non_noerror() -> None:
    from tools.benchlib import report

    ok = RunResult(qps=1.0, completed=1, lost=0, run_time=1.0, cpu_s=0.0, us_per_query=1.0,
                   rss_kib=1, rcodes={"NOERROR": 5})
    bad = RunResult(qps=1.0, completed=1, lost=0, run_time=1.0, cpu_s=0.0, us_per_query=1.0,
                    rss_kib=1, rcodes={"NOERROR": 5, "SERVFAIL": 2})
    results = {"udp-hit": {"pydist": SideResult(runs=[bad, bad]), "dnsdist": SideResult(runs=[ok])}}
    assert report.rcode_notes(results) == ["# udp-hit pydist: non-NOERROR answers: SERVFAIL 4"]


def test_startup_table_reports_medians_and_difference() -> None:
    from tools.benchlib import startup
    py = startup.StartupResult(answer_s=[0.3, 0.1, 0.2], check_s=[0.1, 0.1, 0.4],
                               answer_cpu_s=[0.09], check_cpu_s=[0.08])
    dd = startup.StartupResult(answer_s=[0.02, 0.03, 0.025], check_s=[0.01],
                               answer_cpu_s=[0.01], check_cpu_s=[0.01])
    lines = startup.table({"pydist": py, "dnsdist": dd}).splitlines()
    assert lines[2].split("|") == ["exec to first answer ", "  0.200 ", "   0.025 ", "     +0.175"]
    assert lines[3].split("|")[1:] == ["  0.100 ", "   0.010 ", "     +0.090"]
    assert startup.table({"pydist": startup.StartupResult(error="x"),
                          "dnsdist": dd}).splitlines()[2].endswith("-")
