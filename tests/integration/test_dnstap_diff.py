"""dnstap logging (newFrameStreamTcpLogger / newFrameStreamUnixLogger, DnstapLogAction,
DnstapLogResponseAction), pydist against real dnsdist 1.7.3: the same Frame Streams handshake
and the same Dnstap records, field for field, for a query, its answer and a cache hit."""
from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from tests.conftest import ResponderFactory, Starter, available_impls
from tests.helpers.pbdecode import decode
from tests.helpers.pydist_proc import poll_until, query

CONTENT = b"protobuf:dnstap.Dnstap"
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer{address="{backend}"}
getPool(""):setCache(newPacketCache(100))
fs = LOGGER
addAction(AllRule(), DnstapLogAction("ident", fs))
addResponseAction(AllRule(), DnstapLogResponseAction("ident", fs))
addCacheHitResponseAction(AllRule(), DnstapLogResponseAction("hit", fs))
"""


class FrameStreamReader:
    """A Frame Streams reader: answers READY with ACCEPT, keeps the control frames it got and
    the data frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.controls: list[bytes] = []
        self.frames: list[bytes] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            f = conn.makefile("rb")
            while len(head := f.read(4)) == 4:
                (size,) = struct.unpack("!I", head)
                if size:
                    self.frames.append(f.read(size))
                    continue
                body = f.read(struct.unpack("!I", f.read(4))[0])
                self.controls.append(body)
                if struct.unpack_from("!I", body)[0] == 4:          # READY -> ACCEPT
                    accept = struct.pack("!III", 1, 1, len(CONTENT)) + CONTENT
                    conn.sendall(b"\0\0\0\0" + struct.pack("!I", len(accept)) + accept)


def _normalized(frame: bytes, listen: int) -> list:
    """A record without times and the client's port."""
    out = []
    for number, value in decode(frame, {14: {}}):
        if number == 14:
            assert (7, listen) in value
            value = [(n, v) for n, v in value if n not in (6, 7, 8, 9, 12, 13)]
            value = [(n, (v[2:] if n in (10, 14) else v)) for n, v in value]  # IDs differ
        out.append((number, value))
    return out


def _run(impl: str, start_proc: Starter, responder_factory: ResponderFactory,
         tmp_path: Path, unix: bool) -> tuple[FrameStreamReader, int]:
    if unix:
        path = tmp_path / f"{impl}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.listen(1)
        logger = f'newFrameStreamUnixLogger("{path}")'
    else:
        sock = socket.create_server(("127.0.0.1", 0))
        logger = f'newFrameStreamTcpLogger("127.0.0.1:{sock.getsockname()[1]}")'
    reader = FrameStreamReader(sock)
    proc = start_proc(impl, CONF.replace("LOGGER", logger),
                      {"backend": responder_factory().address})
    poll_until(lambda: len(reader.controls) >= 2)             # READY, then START
    for _ in range(2):                                        # a miss, then a cache hit
        assert query(proc.addr(), "www.example.com.") is not None
    poll_until(lambda: len(reader.frames) >= 4, timeout=8.0)
    return reader, proc.addr()[1]


@pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")
@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_records_as_dnsdist(unix: bool, start_proc: Starter,
                            responder_factory: ResponderFactory, tmp_path: Path) -> None:
    seen = {}
    for impl in ("pydist", "dnsdist"):
        reader, listen = _run(impl, start_proc, responder_factory, tmp_path, unix)
        assert [struct.unpack_from("!I", c)[0] for c in reader.controls[:2]] == [4, 2]
        assert all(c.endswith(CONTENT) for c in reader.controls[:2])
        seen[impl] = [_normalized(f, listen) for f in reader.frames[:4]]
    assert seen["pydist"] == seen["dnsdist"]
    idents = [dict(r)[1] for r in seen["pydist"]]
    assert idents == [b"ident", b"ident", b"ident", b"hit"]
    kinds = [dict(dict(r)[14])[1] for r in seen["pydist"]]
    assert kinds == [5, 6, 5, 6]
