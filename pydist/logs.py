"""Where pydist's log lines go, as dnsdist 1.7.3 sends them: every line to stdout, and to
syslog (`/dev/log`, ident `dnsdist[pid]`, facility daemon or setSyslogFacility's) unless
`--disable-syslog`. dnsdist picks the priority by call site (infolog, warnlog, errlog); pydist
logs lines without one, so `level_of` gives each known line dnsdist's priority (observed on
the binary) and every other line dnsdist's most common one, info.

pydist's own addition: `--log-format json` (or `pydist.setLogFormat("json")`) writes each
stdout line as one JSON object with its time, level, event kind (startup, health, dynblock,
error, log) and the fields a collector wants, syslog keeping dnsdist's text. A missing syslog
socket is never an error: the line still reaches stdout, and the socket is tried again later.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import socket
import sys
import time
from typing import TextIO

DEV_LOG = "/dev/log"
INFO, WARNING, ERROR = "info", "warning", "error"
_PRIORITY = {INFO: 6, WARNING: 4, ERROR: 3}
RETRY_SECONDS = 10.0
FACILITIES = {name: code for name, code in logging.handlers.SysLogHandler.facility_names.items()}

# (line prefix, dnsdist's priority, event kind), first match wins
_KNOWN: tuple[tuple[str, str, str], ...] = (
    ("Listening on ", WARNING, "startup"),
    ("dnsdist 1.7.3 comes with ABSOLUTELY NO WARRANTY", WARNING, "startup"),
    ("ACL allowing queries from: ", INFO, "startup"),
    ("Console ACL allowing connections from: ", INFO, "startup"),
    ("Added downstream server ", INFO, "startup"),
    ("Accepting control connections on ", INFO, "startup"),
    ("Webserver launched on ", WARNING, "startup"),
    ("No downstream servers defined", ERROR, "startup"),
    ("Marking downstream ", WARNING, "health"),
    ("Inserting dynamic block for ", WARNING, "dynblock"),
    ("Updating dynamic block for ", WARNING, "dynblock"),
    ("Inserting dynamic suffix block for ", WARNING, "dynblock"),
    ("Fatal ", ERROR, "error"),
    ("Warning", WARNING, "log"),
)
_HEALTH = re.compile(r"Marking downstream (?P<server>.+) as '(?P<state>[a-z]+)'$")
_DYNBLOCK = re.compile(r"(?:Inserting|Updating) dynamic (?:suffix )?block for (?P<target>\S+) "
                       r"for (?P<seconds>\d+) seconds: (?P<reason>.*)$")


def classify(line: str) -> tuple[str, str]:
    """(dnsdist's priority for this line, event kind)."""
    for prefix, level, event in _KNOWN:
        if line.startswith(prefix):
            return level, event
    if "rror" in line or " failed" in line:
        return WARNING, "error"
    return INFO, "log"


def json_line(line: str, now: float | None = None) -> str:
    """One log line as a JSON object (pydist's structured format)."""
    level, event = classify(line)
    t = time.time() if now is None else now
    doc: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",
        "level": level, "event": event, "msg": line}
    match = _HEALTH.match(line) if event == "health" else \
        _DYNBLOCK.match(line) if event == "dynblock" else None
    if match is not None:
        doc.update({k: int(v) if k == "seconds" else v for k, v in match.groupdict().items()})
    return json.dumps(doc, ensure_ascii=False)


class _Handler(logging.handlers.SysLogHandler):
    """The standard library's syslog handler, shaped as glibc's syslog() writes: no NUL at
    the end, the time and `dnsdist[pid]: ` before the text; a failed send neither raises
    nor prints a traceback (there may be no syslog daemon at all)."""

    append_nul = False
    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True


class _Format(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.ident = f"dnsdist[{os.getpid()}]: "

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(record.created))
        return f"{stamp} {self.ident}{record.getMessage()}"


_LEVELS = {INFO: logging.INFO, WARNING: logging.WARNING, ERROR: logging.ERROR}


class Syslog:
    """dnsdist's syslog stream: `<PRI>Mmm dd hh:mm:ss dnsdist[pid]: text` to /dev/log."""

    def __init__(self, address: str = DEV_LOG, facility: int = FACILITIES["daemon"]) -> None:
        self.address = address
        self.facility = facility
        self._handler: _Handler | None = None
        self._next_try = 0.0

    def _connect(self) -> _Handler | None:
        now = time.monotonic()
        if now < self._next_try:
            return None
        try:
            handler = _Handler(self.address, self.facility, socket.SOCK_DGRAM)
        except OSError:
            self._next_try = now + RETRY_SECONDS     # no syslog here: stdout only, for now
            return None
        handler.setFormatter(_Format())
        return handler

    def send(self, level: str, line: str) -> None:
        if self._handler is None:
            self._handler = self._connect()
            if self._handler is None:
                return
        record = logging.LogRecord("pydist", _LEVELS[level], "", 0, line, None, None)
        self._handler.emit(record)
        if self._handler.failed:                     # the daemon went away: retry later
            self.close()
            self._next_try = time.monotonic() + RETRY_SECONDS

    def set_facility(self, facility: int) -> None:
        self.facility = facility
        if self._handler is not None:
            self._handler.facility = facility

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None


class LogSink:
    """The registry's `log(line)`: stdout (text or JSON lines) and syslog."""

    def __init__(self, syslog: Syslog | None, stream: TextIO | None = None,
                 json_format: bool = False) -> None:
        self.syslog = syslog
        self.stream = stream
        self.json_format = json_format

    def __call__(self, line: str) -> None:
        if self.syslog is not None:
            self.syslog.send(classify(line)[0], line)
        text = json_line(line) if self.json_format else line
        out = self.stream.buffer if self.stream is not None else sys.stdout.buffer
        out.write(text.encode("latin-1" if not self.json_format else "utf-8", "replace") + b"\n")
        out.flush()

    def set_format(self, name: str) -> bool:
        """'text' (dnsdist's) or 'json'; False for any other name."""
        if name not in ("text", "json"):
            return False
        self.json_format = name == "json"
        return True


def facility_code(value: int | str) -> int | None:
    """setSyslogFacility's argument: the C value dnsdist hands to openlog() (LOG_LOCAL0 is
    16 << 3) or a name such as "local0" or "log_local0"; None for an unknown name."""
    if isinstance(value, int):
        return (value >> 3) & 0x7f
    name = value.lower()
    return FACILITIES.get(name[4:] if name.startswith("log_") else name)

