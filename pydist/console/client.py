"""The console client: ``dnsdist -c`` / ``dnsdist -e``, byte for byte as dnsdist 1.7.3.

Flow (``doClient`` in ``pdns/dnsdist-console.cc``): refuse an invalid key before
connecting, exchange nonces, send an encrypted empty probe (a closed connection
here means a key mismatch), then either run one ``-e`` command or read lines
with readline. Fatal errors print ``Fatal error: <why>`` on stdout and exit 1.
"""

from __future__ import annotations

import os
import pwd
import socket
import sys
from collections.abc import Iterable
from typing import TextIO

from pydist.console import keywords, protocol
from pydist.console.server import format_peer

HISTORY_NAME = ".pydist_history"
INVALID_KEY = (
    "The currently configured console key is not valid, please configure a valid key "
    "using the setKey() directive"
)
KEY_MISMATCH = (
    "The server closed the connection right away, likely indicating a key mismatch. "
    "Please check your setKey() directive."
)
CONNECTION_CLOSED = "Connection closed by the server."

# Completion words: dnsdist 1.7.3's console keyword table, the one help() lists.
KEYWORDS: tuple[str, ...] = keywords.completions()

_VALID, _CLOSED = range(2)


class FatalError(Exception):
    """What dnsdist's main() reports as ``Fatal error: <message>`` with exit code 1."""


def history_file() -> str:
    """$HOME, else the passwd home directory, else the current directory (as dnsdist)."""
    home = os.environ.get("HOME")
    if not home:
        try:
            home = pwd.getpwuid(os.geteuid()).pw_dir
        except KeyError:
            home = ""
    return os.path.join(home or ".", HISTORY_NAME)


def complete(text: str, state: int, begin: int = 0) -> str | None:
    """readline completer: keywords, only at the start of the line, as dnsdist."""
    if begin != 0:
        return None
    matches = [k for k in KEYWORDS if k.startswith(text)]
    return matches[state] if state < len(matches) else None


class ConsoleClient:
    """One connection to a console server, with blocking I/O (the client owns its process)."""

    def __init__(self, key: bytes, out: TextIO, err: TextIO) -> None:
        self._key = key
        self._out = out
        self._err = err
        self._sock: socket.socket | None = None
        self._session: protocol.ConsoleSession | None = None
        self.max_msg_size = protocol.DEFAULT_MAX_MSG_SIZE
        self.line_open = False     # the last reply left the cursor mid-line (errors do)

    def connect(self, host: str, port: int) -> None:
        """Connect and exchange nonces.

        :raises FatalError: on a refused connection or a server that hangs up.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect((host, port))
        except OSError as exc:
            sock.close()
            where = format_peer((host, port))
            raise FatalError(f"connecting socket to {where}: {exc.strerror}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        ours = protocol.new_nonce()
        self._send(ours)
        theirs = self._read_exact(protocol.NONCE_SIZE)
        self._session = protocol.ConsoleSession(ours, theirs)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send_message(self, line: str, output_empty_line: bool) -> int:
        """Send one line, print the reply as dnsdist's sendMessageToServer does."""
        assert self._session is not None
        msg = self._session.encrypt(self._key, line.encode("utf-8", "surrogateescape"))
        self._send(protocol.frame(msg))
        try:
            length = protocol.decode_length(self._read_exact(protocol.LENGTH_SIZE))
        except FatalError:
            self._out.write(CONNECTION_CLOSED + "\n")
            self._out.flush()
            return _CLOSED
        if length > self.max_msg_size:
            # dnsdist's client logs this only to syslog and reports a closed connection
            self._out.write(CONNECTION_CLOSED + "\n")
            self._out.flush()
            return _CLOSED
        if length == 0:
            if output_empty_line:
                self._out.write("\n")
                self._out.flush()
            return _VALID
        body = self._read_exact(length)
        try:
            reply = self._session.decrypt(self._key, body)
        except protocol.ConsoleCryptoError as exc:
            raise FatalError(str(exc)) from None
        text = reply.decode("utf-8", "surrogateescape")
        self._out.write(text)
        self._out.flush()
        self.line_open = not text.endswith("\n")
        return _VALID

    def end_line(self) -> None:
        self._out.write("\n")
        self._out.flush()
        self.line_open = False

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise FatalError(f"failed in writen2: {exc.strerror}") from None

    def _read_exact(self, size: int) -> bytes:
        assert self._sock is not None
        chunks = bytearray()
        while len(chunks) < size:
            try:
                data = self._sock.recv(size - len(chunks))
            except OSError as exc:
                raise FatalError(f"failed in readn2: {exc.strerror}") from None
            if not data:
                raise FatalError("EOF while reading message")
            chunks += data
        return bytes(chunks)


def run_client(
    host: str,
    port: int,
    key: bytes | None,
    command: str | None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    verbose: bool = False,
    max_msg_size: int = protocol.DEFAULT_MAX_MSG_SIZE,
) -> int:
    """Run ``-e command`` (or an interactive console when command is empty); the exit code."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if key is None or not protocol.is_valid_key(key):
        err.write(INVALID_KEY + "\n")
        err.flush()
        return 0
    if verbose:
        out.write(f"Connecting to {format_peer((host, port))}\n")
    client = ConsoleClient(key, out, err)
    client.max_msg_size = max_msg_size
    try:
        client.connect(host, port)
        probe = client.send_message("", True)
        if probe == _CLOSED:
            err.write(KEY_MISMATCH + "\n")
            err.flush()
            return 0
        if command:
            client.send_message(command, False)
            return 0
        _interactive(client)
        return 0
    except FatalError as exc:
        out.write(f"Fatal error: {exc}\n")
        out.flush()
        return 1
    finally:
        client.close()


def _setup_readline(history: str) -> object | None:
    try:
        import readline
    except ImportError:  # pragma: no cover - platforms without readline
        return None
    readline.clear_history()
    try:
        with open(history, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                readline.add_history(line.rstrip("\n"))
    except OSError:
        pass
    readline.set_completer(lambda text, state: complete(text, state, readline.get_begidx()))
    readline.set_completer_delims(" \t\n\"\\'`@$><=;|&{(")
    readline.parse_and_bind("tab: complete")
    return readline


def read_lines(prompt: str = "> ") -> Iterable[str]:
    """Lines typed at the prompt, until EOF."""
    while True:
        try:
            yield input(prompt)
        except EOFError:
            return


def _interactive(client: ConsoleClient) -> None:
    history = history_file()
    _setup_readline(history)
    try:
        journal: TextIO | None = open(history, "a", encoding="utf-8", errors="surrogateescape")
    except OSError:
        journal = None
    last = ""
    try:
        for line in read_lines():
            if line and line != last and journal is not None:
                journal.write(line + "\n")
                journal.flush()
            last = line
            if line == "quit":
                break
            if line in ("help", "?"):
                line = "help()"
            if not line:  # no need to send an empty line to the server
                continue
            if client.send_message(line, True) != _VALID:
                break
            if client.line_open:
                # dnsdist's error replies end without a newline: the prompt would start
                # mid-line, and readline redraws a recalled history line over the error
                client.end_line()
    finally:
        if journal is not None:
            journal.close()
