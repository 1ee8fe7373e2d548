"""TLSLayer without sockets: a client and a server layer joined by fake transports, DNS framing
through them, early writes held until the handshake, failures with their reason, and garbage
from a client ending in one counted failure, never an exception."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydist.tls.backend_context import BackendTLS
from pydist.tls.frontend_context import FrontendTLS
from pydist.tls.layer import TLSLayer
from tests.helpers.dot import CertSet, make_cert_set


class FakeTransport:
    """Delivers what is written to the peer layer on the next loop turn (as a socket would)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.peer: TLSLayer | None = None
        self.closed = False
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))
        if self.peer is not None and not self.closed:
            self.loop.call_soon(self.peer.data_received, bytes(data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.peer is not None:
                self.loop.call_soon(self.peer.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5353) if name == "peername" else default


class Collector(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.lost = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_cert_set(Path(tmp_path_factory.mktemp("tls")))


def pair(certs: CertSet, loop: asyncio.AbstractEventLoop, subject: str = "dot.test"
         ) -> tuple[TLSLayer, TLSLayer, Collector, Collector, FrontendTLS]:
    front = FrontendTLS([certs.cert], [certs.key], {})
    front.load()
    back = BackendTLS({"caStore": certs.ca_path, "subjectName": subject})
    s_in, c_in = Collector(), Collector()
    server = front.new_layer(s_in, front.handshake_done, front.handshake_failed)
    client = back.new_layer(c_in)
    s_tr, c_tr = FakeTransport(loop), FakeTransport(loop)
    s_tr.peer, c_tr.peer = client, server
    server.connection_made(s_tr)
    client.connection_made(c_tr)
    return client, server, c_in, s_in, front


def test_bytes_flow_both_ways_and_early_writes_wait(certs: CertSet) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        client, server, c_in, s_in, front = pair(certs, loop)
        client.write(b"\x00\x03abc")            # before the handshake: held, then sent
        assert await asyncio.wait_for(client.handshake, 2) is True
        for _ in range(20):
            await asyncio.sleep(0)
        assert bytes(s_in.data) == b"\x00\x03abc"
        server.write(b"\x00\x02ok")
        for _ in range(20):
            await asyncio.sleep(0)
        assert bytes(c_in.data) == b"\x00\x02ok"
        assert front.counters["tlsNewSessions"] == 1 and client.version() == "TLSv1.3"
        client.close()
        for _ in range(20):
            await asyncio.sleep(0)
        assert s_in.lost and c_in.lost
    asyncio.run(run())


def test_wrong_name_fails_with_the_reason(certs: CertSet) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        client, _server, _c, s_in, _front = pair(certs, loop, subject="other.test")
        client.write(b"\x00\x01x")
        result = await asyncio.wait_for(client.handshake, 2)
        assert result == "certificate verify failed: hostname mismatch"
        for _ in range(20):
            await asyncio.sleep(0)
        assert bytes(s_in.data) == b""          # nothing ever sent in clear or otherwise
    asyncio.run(run())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4))
def test_garbage_from_a_client_is_one_failure(certs: CertSet, chunks: list[bytes]) -> None:
    front = FrontendTLS([certs.cert], [certs.key], {})
    front.load()
    failures: list[str] = []
    inner = Collector()
    layer = front.new_layer(inner, None, lambda _l, why: failures.append(why))

    async def run() -> None:
        transport = FakeTransport(asyncio.get_running_loop())
        layer.connection_made(transport)
        for chunk in chunks:
            layer.data_received(chunk)
        layer.connection_lost(None)
    asyncio.run(run())
    assert inner.data == b""                    # garbage never reaches the DNS side
    assert len(failures) <= 1 and inner.lost
