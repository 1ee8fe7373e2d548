"""READY=1 to systemd's notify socket (path and abstract forms); absent or broken: no error."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from pydist.sdnotify import notify


def test_ready_reaches_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        assert notify("READY=1", {"NOTIFY_SOCKET": path})
        assert s.recv(100) == b"READY=1"


def test_ready_reaches_an_abstract_socket() -> None:
    name = f"pydist-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert s.recv(100) == b"READY=1"


def test_no_socket_or_a_dead_one_is_quiet(tmp_path: Path) -> None:
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert not notify("READY=1", {"NOTIFY_SOCKET": "relative"})
