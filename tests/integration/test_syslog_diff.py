"""Logs as dnsdist 1.7.3 writes them, side by side with the real binary: each line to stdout
and to syslog (`<PRI>Mmm dd hh:mm:ss dnsdist[pid]: text`, priority per line, facility from
setSyslogFacility), nothing to syslog with --disable-syslog. Each side gets its own /dev/log
in a private mount namespace (tests/helpers/syslog_ns.py)."""
from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.conf import LOG_EVENTS_CONFIG
from tests.helpers.pydist_proc import free_port, poll_until, query
from tests.helpers.syslog_ns import NamespacedProcess, SyslogCapture

CONFIG = 'setSyslogFacility("local3")\n' + LOG_EVENTS_CONFIG   # before any line is logged
_SYSLOG = re.compile(r"<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d dnsdist\[\d+\]: (.*)$", re.S)
LOCAL3 = 19
KEY_LINES = ("Listening on 127.0.0.1:", "dnsdist 1.7.3 comes with ABSOLUTELY NO WARRANTY",
             "ACL allowing queries from: ", "Marking downstream dead (127.0.0.1:9) as 'down'",
             "Inserting dynamic block for 127.0.0.1/32 for 60 seconds: Exceeded query rate",
             "LuaAction failed inside Lua, returning ServFail: ")


def _run(impl: str, tmp: Path, args: tuple[str, ...] = ()) -> tuple[dict[str, int], list[str]]:
    """(text -> priority of every syslog line, stdout lines) of one run."""
    port = free_port()
    conf = tmp / f"{impl}.conf"
    conf.write_text(CONFIG.replace("{port}", str(port)))
    capture = SyslogCapture(tmp / f"dev-{impl}{len(args)}")
    proc = NamespacedProcess(impl, conf, capture.devdir, args)
    try:
        proc.wait_output("Marking downstream dead")
        query(("127.0.0.1", port), "boom.example.", timeout=0.5)
        for i in range(40):
            query(("127.0.0.1", port), f"q{i}.example.", timeout=0.05)
        proc.wait_output("Inserting dynamic block", timeout=10)
        if "--disable-syslog" not in args:
            assert poll_until(lambda: any("Inserting dynamic block" in m
                                          for m in capture.messages), 5)
        stdout = list(proc.output)
    finally:
        proc.stop()
        capture.close()
    lines = {}
    for message in capture.messages:
        m = _SYSLOG.match(message)
        assert m, repr(message)                   # glibc's syslog() layout, no trailing NUL
        lines[m.group(2)] = int(m.group(1))
    return lines, stdout


def _key(lines: dict[str, int]) -> dict[str, int]:
    return {k: next(p for text, p in lines.items() if text.startswith(k)) for k in KEY_LINES}


def test_syslog_lines_as_dnsdist(tmp_path: Path) -> None:
    real, real_out = _run("dnsdist", tmp_path)
    ours, our_out = _run("pydist", tmp_path)
    assert _key(ours) == _key(real)
    assert all(p >> 3 == LOCAL3 for p in ours.values())
    assert {p & 7 for p in _key(real).values()} == {4, 6}     # warning and info both seen
    for text, priority in ours.items():                    # every line both log: same priority
        if text in real:
            assert priority == real[text], text
    for lines, out in ((real, real_out), (ours, our_out)):  # each syslog line is on stdout too
        assert set(_key(lines)) and all(any(k in line for line in out) for k in KEY_LINES)


def test_disable_syslog_logs_to_stdout_only(tmp_path: Path) -> None:
    for impl in ("dnsdist", "pydist"):
        lines, out = _run(impl, tmp_path, ("--disable-syslog",))
        assert lines == {}, impl
        assert any("Inserting dynamic block" in line for line in out), impl
