"""One comparison run: check-config, start both sides, replay traffic, console, metrics, stop."""
from __future__ import annotations

import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydist.compare.client import send
from pydist.compare.diff import Difference, compare_answers, compare_lines
from pydist.compare.metrics import TCP_CARRIED_NOTE, compare_metrics, known_additions, scrape
from pydist.compare.dohresponder import DoHResponder, stand_in_answer
from pydist.compare.responder import Responder
from pydist.compare.sides import RunResult, Side, SideFailed
from pydist.compare.tlscert import write_self_signed
from pydist.compare.traffic import BadInput, Query

_TRACEBACK_LINE = re.compile(r"^\s+|^stack traceback:")
_NOISY_LOG = re.compile(r"control connection from|^Marking downstream")
_CLIENT_PORT = re.compile(r"\b(127\.\d+\.\d+\.\d+):\d{4,5}(?!\d)")
_FLOAT = re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])")
# a showServers() row: the Queries and Drops of servers sharing a pool depend on the policy's luck
_SERVER_ROW = re.compile(r"^(\d+\s+\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+\d+\s+\d+\s+)\d+(\s+)\d+")


@dataclass
class Options:
    """Everything the command line chose."""

    config: Path
    dnsdist: list[str]
    pydist: list[str]
    queries: list[Query] = field(default_factory=list)
    bad_input: list[BadInput] = field(default_factory=list)
    upstreams: dict[str, str] = field(default_factory=dict)
    consoles: list[str] = field(default_factory=list)
    metrics: bool = False
    map_loopback: bool = False
    rate: float = 200.0
    timeout: float = 1.5
    start_timeout: float = 20.0
    ttl_tolerance: int = 1
    extra_lua_a: str = ""
    extra_lua_b: str = ""
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Finding:
    """A difference, with the query or command that shows it."""

    kind: str
    detail: str
    where: str


@dataclass
class Outcome:
    """The whole result: verdict, findings, and what could not be compared."""

    verdict: str = "equivalent"  # equivalent | different | failed
    findings: list[Finding] = field(default_factory=list)
    not_comparable: list[str] = field(default_factory=list)
    bad_input: list[BadInput] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    queries_sent: int = 0
    note: str = ""

    def add(self, diffs: list[Difference], where: str) -> None:
        self.findings += [Finding(d.kind, d.detail, where) for d in diffs]


def _check_lines(side: Side, result: RunResult) -> list[str]:
    text = side.normalize(result.output)
    return [line for line in text.splitlines() if line.strip() and not _TRACEBACK_LINE.match(line)]


def _log_lines(side: Side) -> list[str]:
    return sorted(_CLIENT_PORT.sub(r"\1:<port>", side.normalize(line))
                  for line in side.log().splitlines() if not _NOISY_LOG.search(line))


def _console_text(side: Side, result: RunResult) -> list[str]:
    text = _FLOAT.sub("<n.n>", side.normalize(result.output))
    text = _CLIENT_PORT.sub(r"\1:<port>", text)
    lines = [" ".join(_SERVER_ROW.sub(r"\1<n>\2<n>", line).split()) for line in text.splitlines()]
    return [line for line in lines if not _NOISY_LOG.search(line)]


def run(opts: Options) -> Outcome:
    """Compare opts.config on dnsdist (side A) and pydist (side B); nothing is left running."""
    outcome = Outcome(bad_input=list(opts.bad_input))
    with tempfile.TemporaryDirectory(prefix="pydist-compare-") as tmp:
        write_self_signed(Path(tmp) / "compare-dot.pem", Path(tmp) / "compare-dot.key")
        (Path(tmp) / "compare-dot.tickets").write_bytes(os.urandom(80))
        responder = Responder().start()
        doh = DoHResponder(stand_in_answer, str(Path(tmp) / "compare-dot.pem"),
                           str(Path(tmp) / "compare-dot.key"), count=len(responder.ports)).start()
        sides: list[Side] = []
        try:
            sides = [Side("dnsdist", opts.dnsdist, opts.config, Path(tmp), responder.ports, opts.upstreams,
                          opts.map_loopback, opts.metrics, opts.extra_lua_a, env=opts.env,
                          doh_ports=doh.ports),
                     Side("pydist", opts.pydist, opts.config, Path(tmp), responder.ports, opts.upstreams,
                          opts.map_loopback, opts.metrics, opts.extra_lua_b, env=opts.env,
                          doh_ports=doh.ports)]
            _run_sides(opts, sides, outcome)
        finally:
            for side in sides:
                side.stop()
            responder.close()
            doh.close()
    if outcome.failures:
        outcome.verdict = "failed"
    elif outcome.findings:
        outcome.verdict = "different"
    return outcome


def _run_sides(opts: Options, sides: list[Side], outcome: Outcome) -> None:
    a, b = sides
    checks = [a.check_config(), b.check_config()]
    for side, result in zip(sides, checks):
        if result.timed_out or result.returncode is None:
            outcome.failures.append({"side": side.name, "stage": "check-config",
                                     "reason": "timed out" if result.timed_out else "could not run",
                                     "log": result.output})
    if outcome.failures:
        return
    ok_a, ok_b = checks[0].returncode == 0, checks[1].returncode == 0
    if ok_a != ok_b:
        outcome.add([Difference("check-config-verdict",
                                f"dnsdist {'accepts' if ok_a else 'rejects'}, pydist {'accepts' if ok_b else 'rejects'}")],
                    "--check-config")
    outcome.add(compare_lines("check-config-message", _check_lines(a, checks[0]), _check_lines(b, checks[1])),
                "--check-config")
    if not (ok_a and ok_b):
        outcome.note = "both sides reject the configuration" if not (ok_a or ok_b) else \
            "one side rejects the configuration: nothing started"
        return
    for side in sides:
        try:
            side.start(opts.start_timeout)
        except SideFailed as exc:
            outcome.failures.append({"side": exc.side, "stage": "start", "reason": exc.reason, "log": exc.log})
    if outcome.failures:
        return
    outcome.not_comparable = sorted({text for kind, text in a.notes() if kind in ("notcomparable", "substituted")})
    _replay(opts, sides, outcome)
    for side in sides:
        if not side.alive():
            outcome.failures.append({"side": side.name, "stage": "traffic",
                                     "reason": "the process died while traffic was replayed", "log": side.log()})
    if outcome.failures:
        return
    for command in opts.consoles:
        ra, rb = a.console(command), b.console(command)
        if ra.returncode != rb.returncode:
            outcome.add([Difference("console", f"exit status {ra.returncode} vs {rb.returncode}")], command)
        outcome.add(compare_lines("console", _console_text(a, ra), _console_text(b, rb)), command)
    if opts.metrics:
        try:
            ma, mb = scrape(a.web_port, a.api_key), scrape(b.web_port, b.api_key)
            carried = any(kind == "tcpcarried" for kind, _ in a.notes())
            outcome.add(compare_metrics(ma, mb, a.normalize, b.normalize, carried), "/metrics")
            if carried:
                outcome.not_comparable.append(TCP_CARRIED_NOTE)
            outcome.not_comparable = sorted(set(outcome.not_comparable) | set(known_additions(ma, mb)))
        except Exception as exc:  # a side whose web server misbehaves is a difference, not a crash
            outcome.add([Difference("metric-scrape", f"scraping /metrics failed: {exc}")], "/metrics")
    log_a, log_b = _log_lines(a), _log_lines(b)
    if _same_characters(log_a, log_b):
        return  # only the interleaving of lines written by two threads differs
    outcome.add(compare_lines("log", log_a, log_b), "startup and run log")


def _same_characters(a: list[str], b: list[str]) -> bool:
    return sorted("".join("".join(a).split())) == sorted("".join("".join(b).split()))


def _replay(opts: Options, sides: list[Side], outcome: Outcome) -> None:
    """Each query to both sides at once, at most opts.rate queries a second."""
    ports = [side.target_port() for side in sides]
    dot_ports = [side.dot_port() for side in sides]
    doh_targets = [side.doh_target() for side in sides]
    interval = 1.0 / opts.rate if opts.rate > 0 else 0.0
    with ThreadPoolExecutor(max_workers=2) as pool:
        next_at = time.monotonic()
        for query in opts.queries:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # rate limiting, not synchronisation
            next_at = max(next_at + interval, time.monotonic())
            pa, pb = dot_ports if query.tls else ports
            da, db = doh_targets if query.https else (None, None)
            fa = pool.submit(send, query, pa, opts.timeout, doh=da)
            fb = pool.submit(send, query, pb, opts.timeout, doh=db)
            ea, eb = fa.result(), fb.result()
            outcome.queries_sent += 1
            tolerance = opts.ttl_tolerance + int(abs(ea.sent_at - eb.sent_at))
            outcome.add(compare_answers(query.wire, ea.answer, eb.answer, tolerance), query.describe())
            if not all(side.alive() for side in sides):
                return
