"""The shipped systemd unit: its command lines are ones pydist accepts, and a process started
as the unit starts it (--supervised, $NOTIFY_SOCKET set) tells systemd it is ready only once
it serves DNS (Type=notify)."""
from __future__ import annotations

import configparser
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from pydist.cli import Options, parse_args
from tests.helpers.pydist_proc import free_port, query
from tests.helpers.responder import Responder

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "contrib" / "systemd" / "pydist.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str          # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser["Service"]


def test_unit_command_lines_parse() -> None:
    svc = service()
    assert svc["Type"] == "notify"
    assert "CAP_NET_BIND_SERVICE" in svc["AmbientCapabilities"]
    for key, check in (("ExecStartPre", True), ("ExecStart", False)):
        argv = shlex.split(svc[key])
        assert argv[0].endswith("/pydist")
        opts = parse_args(argv[1:])
        assert isinstance(opts, Options) and opts.check is check
        assert opts.uid is None and opts.gid is None   # User=/Group= instead of -u/-g
    assert parse_args(shlex.split(svc["ExecStart"])[1:]).supervised  # type: ignore[union-attr]


def test_supervised_process_notifies_ready_once_serving(tmp_path: Path,
                                                        responder: Responder) -> None:
    port = free_port()
    conf = tmp_path / "dnsdist.conf"
    conf.write_text(f'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
                    f'newServer("{responder.address}")\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(20)
    proc = subprocess.Popen([sys.executable, "-m", "pydist", "--supervised", "--disable-syslog",
                             "-C", str(conf)], cwd=REPO, stdout=subprocess.DEVNULL,
                            env={"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        assert notify.recv(100) == b"READY=1"
        assert query(("127.0.0.1", port), "ready.example.") is not None
    finally:
        proc.terminate()
        proc.wait(10)
        notify.close()
