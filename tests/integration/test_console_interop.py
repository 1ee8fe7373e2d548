"""Console interop with real dnsdist 1.7.3: our client against its server, its client
against our server, and our executor's rendering against its console."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from lupa import luajit21

from luaapi.console import make_executor
from pydist.console import protocol
from pydist.console.client import run_client
from pydist.console.server import bind_console_socket, serve_console
from tests.helpers.pydist_proc import free_port  # below the ephemeral range: no probe race

DNSDIST = shutil.which("dnsdist")
pytestmark = pytest.mark.skipif(DNSDIST is None, reason="dnsdist 1.7.3 binary not installed")

KEY_MISMATCH = (
    "The server closed the connection right away, likely indicating a key mismatch. "
    "Please check your setKey() directive.\n"
)


def wait_for_port(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)  # polling interval while waiting for a condition
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def write_conf(path: Path, port: int, key: bytes) -> Path:
    path.write_text(
        'setSecurityPollSuffix("")\n'
        f'controlSocket("127.0.0.1:{port}")\n'
        f'setKey("{base64.b64encode(key).decode()}")\n'
    )
    return path


def run_client_subprocess(port: int, key: bytes | None, command: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pydist.console.client import run_client; "
        f"sys.exit(run_client('127.0.0.1', {port}, {key!r}, {command!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.fixture()
def real_dnsdist(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    port, key = free_port(), protocol.generate_key()
    conf = write_conf(tmp_path / "dnsdist.conf", port, key)
    proc = subprocess.Popen(
        [DNSDIST, "--supervised", "--disable-syslog", "-C", str(conf), "-l", f"127.0.0.1:{free_port()}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port, key
    finally:
        proc.kill()
        proc.wait(timeout=10)


class ThreadedConsole:
    """Our ConsoleServer on a uvloop loop in a thread, as the engine would run it."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.logs: list[str] = []
        self.lines: list[str] = []
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sock = bind_console_socket("127.0.0.1", 0)
        self.port = int(self.sock.getsockname()[1])

    def execute(self, line: str) -> str:
        self.lines.append(line)
        return f"echo: {line}\n" if line else ""

    def start(self) -> None:
        self.thread.start()
        coro = serve_console(
            self.loop,
            self.sock,
            execute=self.execute,
            get_key=lambda: self.key,
            acl_allows=lambda ip: ip.startswith("127."),
            max_connections=lambda: 100,
            log_connections=lambda: True,
            max_msg_size=lambda: protocol.DEFAULT_MAX_MSG_SIZE,
            log=self.logs.append,
        )
        self.server = asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def wait_log(self, text: str, deadline: float = 5.0) -> None:
        end = time.monotonic() + deadline
        while not any(text in line for line in self.logs):
            if time.monotonic() > end:
                raise TimeoutError(f"{text!r} not in {self.logs}")
            time.sleep(0.01)  # polling interval while waiting for a condition


@pytest.fixture()
def our_console() -> Iterator[ThreadedConsole]:
    console = ThreadedConsole(protocol.generate_key())
    console.start()
    try:
        yield console
    finally:
        console.stop()


def dnsdist_client(conf: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DNSDIST, "-C", str(conf), "-e", command], capture_output=True, text=True, timeout=20
    )


# (a) our client, their server ----------------------------------------------------------


def test_our_client_runs_show_version_on_dnsdist(real_dnsdist: tuple[int, bytes]) -> None:
    port, key = real_dnsdist
    result = run_client_subprocess(port, key, "showVersion()")
    assert (result.returncode, result.stdout, result.stderr) == (0, "dnsdist 1.7.3\n", "")


def test_our_client_wrong_key_against_dnsdist(real_dnsdist: tuple[int, bytes]) -> None:
    port, _ = real_dnsdist
    result = run_client_subprocess(port, protocol.generate_key(), "showVersion()")
    assert result.returncode == 0
    assert result.stdout == "Connection closed by the server.\n"
    assert result.stderr == KEY_MISMATCH


def test_our_client_invalid_key_and_refused_connection() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_client("127.0.0.1", 1, b"short", "x", out=out, err=err) == 0
    assert out.getvalue() == ""
    assert err.getvalue().startswith("The currently configured console key is not valid")
    port = free_port()
    out, err = io.StringIO(), io.StringIO()
    assert run_client("127.0.0.1", port, protocol.generate_key(), "x", out=out, err=err) == 1
    assert out.getvalue() == (
        f"Fatal error: connecting socket to 127.0.0.1:{port}: Connection refused\n"
    )


# (b) their client, our server ----------------------------------------------------------


def test_dnsdist_client_talks_to_our_server(our_console: ThreadedConsole, tmp_path: Path) -> None:
    conf = write_conf(tmp_path / "client.conf", our_console.port, our_console.key)
    result = dnsdist_client(conf, "showServers()")
    assert (result.returncode, result.stdout) == (0, "echo: showServers()\n")
    assert our_console.lines == ["", "showServers()"]  # probe, then the command
    our_console.wait_log("Closed control connection from 127.0.0.1:")
    assert our_console.logs[0] == f"Accepting control connections on 127.0.0.1:{our_console.port}"


def test_dnsdist_client_wrong_key_against_our_server(
    our_console: ThreadedConsole, tmp_path: Path
) -> None:
    conf = write_conf(tmp_path / "client.conf", our_console.port, protocol.generate_key())
    result = dnsdist_client(conf, "showServers()")
    assert result.returncode == 0
    assert result.stdout == "Connection closed by the server.\n"
    assert result.stderr == KEY_MISMATCH
    our_console.wait_log("Could not decrypt message, please check that the key configured")


# (c) a stalled client does not hold up another one ----------------------------------------


def test_stalled_and_hostile_clients_do_not_block(
    our_console: ThreadedConsole, tmp_path: Path
) -> None:
    stalled = socket.create_connection(("127.0.0.1", our_console.port), timeout=5)
    huge = socket.create_connection(("127.0.0.1", our_console.port), timeout=5)
    try:
        stalled.sendall(protocol.new_nonce())
        assert len(stalled.recv(24)) == 24
        stalled.sendall(b"\x00\x00\x01")  # three bytes of a length prefix, then silence
        huge.sendall(protocol.new_nonce() + b"\xff\xff\xff\xff")
        conf = write_conf(tmp_path / "client.conf", our_console.port, our_console.key)
        result = dnsdist_client(conf, "dumpStats()")
        assert result.stdout == "echo: dumpStats()\n"
        # the 4 GB length was refused by closing that connection
        data = huge.recv(100)
        assert len(data) == 24 and huge.recv(100) == b""
    finally:
        stalled.close()
        huge.close()
    our_console.wait_log("Closed control connection")


# our executor renders like dnsdist's console ------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["1+1", '"x"', "return true", "nosuch()", "foo(", 'show("a")', "{a=1, b=0.1}", "x = 1"],
)
def test_executor_matches_dnsdist(real_dnsdist: tuple[int, bytes], command: str) -> None:
    port, key = real_dnsdist
    theirs = io.StringIO()
    assert run_client("127.0.0.1", port, key, command, out=theirs, err=io.StringIO()) == 0
    lua = luajit21.LuaRuntime(
        register_eval=False, register_builtins=False, unpack_returned_tuples=True
    )
    output: list[str] = []
    lua.globals().show = lambda text: output.append(f"{text}\n")
    assert make_executor(lua, output)(command) == theirs.getvalue()
