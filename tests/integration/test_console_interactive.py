"""`pydist -c` driven at a real terminal (pexpect): prompt, local tab completion, replies,
history file and `quit`, against pydist's console and against real dnsdist 1.7.3's."""
from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.conf import console_prelude

CONF = console_prelude(backend=False)
REPO = Path(__file__).resolve().parents[2]


def spawn_client(conf: Path, home: Path) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "pydist", "-C", str(conf), "-c"], cwd=str(REPO),
                         env={"HOME": str(home), "TERM": "xterm", "PATH": "/usr/bin:/bin"},
                         encoding="utf-8", timeout=15, dimensions=(40, 200))


def open_session(start_proc: Starter, tmp_path: Path, server: str) -> tuple[pexpect.spawn, Path]:
    """A console server and an interactive client at its first prompt."""
    proc = start_proc(server, CONF, ready=r"Accepting control connections")
    home = tmp_path / "home"
    home.mkdir()
    child = spawn_client(proc.conf, home)
    child.expect_exact("> ")
    return child, home


def quit_session(child: pexpect.spawn) -> None:
    child.sendline("quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.parametrize("server", BOTH)
def test_interactive_client_session(start_proc: Starter, tmp_path: Path, server: str) -> None:
    child, home = open_session(start_proc, tmp_path, server)
    # local completion: "showVers" + TAB completes to "showVersion()" (no parameters)
    child.send("showVers\t")
    child.expect_exact("showVersion()")
    child.send("\r")
    child.expect_exact("dnsdist 1.7.3")
    child.expect_exact("> ")
    child.sendline("nosuch()")
    child.expect_exact("attempt to call global 'nosuch' (a nil value)")
    child.expect_exact("> ")
    child.sendline("")           # empty lines are not sent
    child.expect_exact("> ")
    quit_session(child)
    history = (home / ".pydist_history").read_text().splitlines()
    assert history == ["showVersion()", "nosuch()", "quit"]


def _client_runs(conf: Path, cmd: str) -> dict[str, tuple[int, str, str]]:
    import subprocess
    runs = {}
    for impl, argv in (("dnsdist", ["dnsdist"]), ("pydist", [sys.executable, "-m", "pydist"])):
        res = subprocess.run(argv + ["-C", str(conf), "-e", cmd], capture_output=True, text=True,
                             timeout=20, cwd=str(REPO))
        runs[impl] = (res.returncode, res.stdout, res.stderr)
    return runs


@pytest.mark.parametrize("server", BOTH)
def test_client_output_max_msg_size(start_proc: Starter, tmp_path: Path, server: str) -> None:
    """setConsoleOutputMaxMsgSize in the client's config caps replies: both clients agree."""
    proc = start_proc(server, CONF, ready=r"Accepting control connections")
    small = tmp_path / "client.conf"
    small.write_text(proc.conf.read_text() + "\nsetConsoleOutputMaxMsgSize(100)\n")
    big = _client_runs(small, 'string.rep("x", 500)')
    assert big["pydist"] == big["dnsdist"]
    assert big["pydist"] == (0, "Connection closed by the server.\n", "")
    fits = _client_runs(small, 'string.rep("x", 50)')
    assert fits["pydist"] == fits["dnsdist"] == (0, "x" * 50 + "\n", "")


@pytest.mark.parametrize("server", BOTH)
def test_history_recall_after_error_redraws_cleanly(start_proc: Starter, tmp_path: Path,
                                                    server: str) -> None:
    """An error reply ends without a newline (both servers send it so): the client ends the
    line, so the next prompt starts a line of its own and a recalled line (up arrow) is drawn
    after the prompt, not over the error text."""
    child, _ = open_session(start_proc, tmp_path, server)
    child.sendline("nosuch()")
    child.expect_exact("in main chunk")
    child.expect_exact("> ")
    assert child.before == "\r\n"             # the prompt at the start of its own line
    child.send("\x1b[A")                      # up arrow: recall "nosuch()"
    child.expect_exact("nosuch()")
    assert "\r" not in child.before and "\x1b[" not in child.before   # nothing overdrawn
    child.send("\r")
    child.expect_exact("in main chunk")
    child.expect_exact("> ")
    quit_session(child)
