"""pydist.logs: dnsdist's syslog layout through the standard library's handler, no crash and
a later retry without a syslog socket, JSON lines with the event fields."""
from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

from pydist import logs


class Stream(io.StringIO):
    """A text stream with a bytes buffer, as sys.stdout."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = io.BytesIO()       # type: ignore[misc]

    def lines(self) -> list[str]:
        return self.buffer.getvalue().decode().splitlines()


def _daemon(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(2)
    return s


def test_syslog_layout_priority_and_facility(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path / "log")
    syslog = logs.Syslog(str(tmp_path / "log"))
    out = Stream()
    sink = logs.LogSink(syslog, out)
    sink("Listening on 127.0.0.1:53")
    sink("No downstream servers defined: all packets will get dropped")
    syslog.set_facility(logs.facility_code("local3"))      # type: ignore[arg-type]
    sink("ACL allowing queries from: 127.0.0.0/8")
    got = [daemon.recv(1000) for _ in range(3)]
    assert [g[:g.index(b">") + 1] for g in got] == [b"<28>", b"<27>", b"<158>"]
    assert all(b" dnsdist[" in g and not g.endswith(b"\0") for g in got)
    assert got[0].endswith(b"]: Listening on 127.0.0.1:53")
    assert out.lines()[0] == "Listening on 127.0.0.1:53"
    syslog.close()
    daemon.close()


def test_no_syslog_socket_is_quiet_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(logs, "RETRY_SECONDS", 0.0)
    out = Stream()
    syslog = logs.Syslog(str(tmp_path / "log"))
    sink = logs.LogSink(syslog, out)
    sink("before the daemon")                  # nothing listens: stdout only, no exception
    assert capsys.readouterr().err == ""
    daemon = _daemon(tmp_path / "log")
    sink("after the daemon")
    assert daemon.recv(1000).endswith(b"]: after the daemon")
    daemon.close()
    (tmp_path / "log").unlink()                # the daemon goes away mid-run
    sink("daemon gone")
    assert out.lines() == ["before the daemon", "after the daemon", "daemon gone"]
    assert capsys.readouterr().err == ""


def test_json_lines_carry_event_fields() -> None:
    out = Stream()
    sink = logs.LogSink(None, out, json_format=True)
    sink("Listening on 127.0.0.1:53")
    sink("Marking downstream b1 (127.0.0.1:9) as 'down'")
    sink("Inserting dynamic block for 192.0.2.1/32 for 60 seconds: Exceeded query rate")
    sink('LuaAction failed inside Lua, returning ServFail: boom\nstack traceback:')
    docs = [json.loads(line) for line in out.lines()]
    assert [(d["event"], d["level"]) for d in docs] == [
        ("startup", "warning"), ("health", "warning"), ("dynblock", "warning"),
        ("error", "warning")]
    assert docs[1]["server"] == "b1 (127.0.0.1:9)" and docs[1]["state"] == "down"
    assert (docs[2]["target"], docs[2]["seconds"], docs[2]["reason"]) == \
        ("192.0.2.1/32", 60, "Exceeded query rate")
    assert docs[3]["msg"].endswith("stack traceback:") and docs[0]["ts"].endswith("Z")


def test_facility_codes() -> None:
    assert logs.facility_code("local0") == logs.facility_code("LOG_LOCAL0") == 16
    assert logs.facility_code(16 << 3) == 16                 # the C value dnsdist takes
    assert logs.facility_code("nosuch") is None
