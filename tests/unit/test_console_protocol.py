"""Console protocol: nonces, framing, secretbox, key decoding, and the server state machine."""

from __future__ import annotations

import asyncio
import base64

import nacl.bindings
import pytest

from pydist.console import protocol
from pydist.console.server import ConsoleServer

KEY = bytes(range(32))
CLIENT_NONCE = bytes(range(100, 124))
SERVER_NONCE = bytes(range(200, 224))


def test_merge_takes_first_half_of_lower_and_second_half_of_higher() -> None:
    merged = protocol.merge_nonces(CLIENT_NONCE, SERVER_NONCE)
    assert merged == CLIENT_NONCE[:12] + SERVER_NONCE[12:]


def test_session_nonces_as_dnsdist() -> None:
    server = protocol.ConsoleSession(ours=SERVER_NONCE, theirs=CLIENT_NONCE)
    client = protocol.ConsoleSession(ours=CLIENT_NONCE, theirs=SERVER_NONCE)
    # client -> server nonce = server[0:12] + client[12:24]
    assert client.writing_nonce == SERVER_NONCE[:12] + CLIENT_NONCE[12:]
    assert server.reading_nonce == client.writing_nonce
    assert server.writing_nonce == CLIENT_NONCE[:12] + SERVER_NONCE[12:]
    assert client.reading_nonce == server.writing_nonce


def test_increment_is_big_endian_uint32_without_carry() -> None:
    assert protocol.increment_nonce(bytes(24))[:4] == b"\x00\x00\x00\x01"
    nonce = b"\x00\x00\x00\xff" + bytes(range(20))
    assert protocol.increment_nonce(nonce) == b"\x00\x00\x01\x00" + bytes(range(20))
    wrap = b"\xff\xff\xff\xff" + b"\xaa" * 20
    assert protocol.increment_nonce(wrap) == b"\x00\x00\x00\x00" + b"\xaa" * 20


def test_framing_is_big_endian_length() -> None:
    assert protocol.encode_length(0x01020304) == b"\x01\x02\x03\x04"
    assert protocol.decode_length(b"\x00\x00\x01\x00") == 256
    assert protocol.frame(b"abc") == b"\x00\x00\x00\x03abc"


def test_known_answer_against_libsodium_easy() -> None:
    nonce = bytes(24)
    expected = nacl.bindings.crypto_secretbox(b"showVersion()", nonce, KEY)
    ciphertext = protocol.encrypt(KEY, nonce, b"showVersion()")
    assert ciphertext == expected
    assert len(ciphertext) == len(b"showVersion()") + 16
    # independently fixed: the MAC of the empty message under this key/nonce
    assert protocol.encrypt(KEY, nonce, b"") == nacl.bindings.crypto_secretbox(b"", nonce, KEY)


def test_round_trip_and_increment_per_message() -> None:
    server = protocol.ConsoleSession(ours=SERVER_NONCE, theirs=CLIENT_NONCE)
    client = protocol.ConsoleSession(ours=CLIENT_NONCE, theirs=SERVER_NONCE)
    first_nonce = client.writing_nonce
    for text in (b"", b"showServers()", b"x" * 1000):
        assert server.decrypt(KEY, client.encrypt(KEY, text)) == text
        assert client.decrypt(KEY, server.encrypt(KEY, text[::-1])) == text[::-1]
    assert client.writing_nonce[4:] == first_nonce[4:]
    assert int.from_bytes(client.writing_nonce[:4], "big") == (
        int.from_bytes(first_nonce[:4], "big") + 3
    ) % 2**32


def test_decrypt_failure_message_and_nonce_not_advanced() -> None:
    session = protocol.ConsoleSession(ours=SERVER_NONCE, theirs=CLIENT_NONCE)
    before = session.reading_nonce
    with pytest.raises(protocol.ConsoleCryptoError) as info:
        session.decrypt(KEY, b"\x00" * 32)
    assert str(info.value) == (
        "Could not decrypt message, please check that the key configured with setKey() is correct"
    )
    assert session.reading_nonce == before
    with pytest.raises(protocol.ConsoleCryptoError, match="Could not decrypt message of size 3"):
        session.decrypt(KEY, b"abc")


def test_invalid_key_size_message() -> None:
    with pytest.raises(protocol.ConsoleCryptoError) as info:
        protocol.encrypt(b"abc", bytes(24), b"x")
    assert str(info.value) == "Invalid encryption key of size 3, use setKey() to set a valid key"


def test_make_key_line() -> None:
    line = protocol.make_key_line()
    assert line.startswith('setKey("') and line.endswith('")')
    b64 = line[8:-2]
    assert len(b64) == 44 and b64.endswith("=") and not b64.endswith("==")
    assert len(base64.b64decode(b64)) == 32
    assert protocol.make_key_line(KEY) == 'setKey("' + base64.b64encode(KEY).decode() + '")'


@pytest.mark.parametrize(
    ("text", "size"),
    # sizes observed with dnsdist 1.7.3: setKey(text) then testCrypto()
    [
        ("abc", 3), ("a b c d", 3), ("####", 3), ("YWJj", 3), ("YQ==garbage", 9), ("YQ", 3),
        ("YQ=", 2), ("Y", 3), ("YWJjZA", 6), ("=AAA", 2), ("A=AA", 2), ("YWJj\nZGVm", 6),
        ("YQ==YQ==", 4), ("YWJj!", 6), ("", 0), ("Y===", 0), ("=", 2), ("YWJj=", 5),
        ("YQ==YQ", 6),
    ],
)
def test_lenient_base64_as_dnsdist(text: str, size: int) -> None:
    assert len(protocol.decode_key(text)) == size


def test_base64_rejections_as_dnsdist() -> None:
    with pytest.raises(protocol.KeyDecodeError, match=r"^Unable to decode YWJj~ as Base64$"):
        protocol.decode_key("YWJj~")
    with pytest.raises(IndexError, match=r"__n \(which is 5\) >= this->size\(\) \(which is 5\)"):
        protocol.decode_key("YWJj ")
    key = protocol.generate_key()
    assert protocol.decode_key(base64.b64encode(key).decode()) == key
    assert protocol.is_valid_key(key) and not protocol.is_valid_key(key[:31])
    assert not protocol.is_valid_key(None)


# -- the server protocol, driven without sockets -------------------------------------


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.paused = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 4242)}.get(name, default)

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def make_server(logs: list[str], **overrides: object) -> tuple[ConsoleServer, FakeTransport]:
    options: dict[str, object] = dict(
        execute=lambda line: f"ran {line}\n" if line else "",
        get_key=lambda: KEY,
        acl_allows=lambda ip: ip.startswith("127."),
        max_connections=lambda: 100,
        log_connections=lambda: True,
        max_msg_size=lambda: 10_000_000,
        log=logs.append,
    )
    options.update(overrides)
    server = ConsoleServer(**options)  # type: ignore[arg-type]
    transport = FakeTransport()
    server.connection_made(transport)
    return server, transport


def handshake(server: ConsoleServer, transport: FakeTransport) -> protocol.ConsoleSession:
    server.data_received(CLIENT_NONCE)
    theirs = bytes(transport.written[:24])
    del transport.written[:24]
    return protocol.ConsoleSession(ours=CLIENT_NONCE, theirs=theirs)


def read_reply(transport: FakeTransport, session: protocol.ConsoleSession) -> str:
    length = protocol.decode_length(bytes(transport.written[:4]))
    body = bytes(transport.written[4 : 4 + length])
    del transport.written[: 4 + length]
    return session.decrypt(KEY, body).decode()


def test_server_probe_command_and_close_logs() -> None:
    logs: list[str] = []
    server, transport = make_server(logs)
    assert logs == ["Got control connection from 127.0.0.1:4242"]
    session = handshake(server, transport)
    server.data_received(protocol.frame(session.encrypt(KEY, b"")))
    assert read_reply(transport, session) == ""
    # a command split across reads, then an empty frame probe answered by an empty frame
    message = protocol.frame(session.encrypt(KEY, b"showVersion()"))
    server.data_received(message[:3])
    server.data_received(message[3:10])
    server.data_received(message[10:] + protocol.encode_length(0))
    assert read_reply(transport, session) == "ran showVersion()\n"
    assert bytes(transport.written) == b"\x00\x00\x00\x00"
    server.eof_received()
    server.connection_lost(None)
    assert logs[-1] == "Closed control connection from 127.0.0.1:4242"
    assert transport.closed


def test_server_decrypt_failure() -> None:
    logs: list[str] = []
    server, transport = make_server(logs)
    handshake(server, transport)
    wrong = protocol.ConsoleSession(ours=CLIENT_NONCE, theirs=bytes(24))
    server.data_received(protocol.frame(wrong.encrypt(bytes(32), b"x")))
    assert transport.closed and transport.written == b""
    assert logs[-1] == (
        "Got an exception in client connection from 127.0.0.1:4242: Could not decrypt message, "
        "please check that the key configured with setKey() is correct"
    )


def test_server_oversized_length_and_truncated_frames() -> None:
    logs: list[str] = []
    server, transport = make_server(logs)
    handshake(server, transport)
    server.data_received(b"\xff\xff\xff\xff")
    assert transport.closed and logs[-1] == "Closed control connection from 127.0.0.1:4242"

    logs.clear()
    server, transport = make_server(logs)
    handshake(server, transport)
    server.data_received(b"\x00\x00\x00\x20" + b"garbage")
    server.eof_received()
    assert logs[-1].endswith("127.0.0.1:4242: EOF while reading message")

    logs.clear()
    server, transport = make_server(logs)
    server.data_received(b"short")
    server.connection_lost(ConnectionResetError(104, "Connection reset by peer"))
    assert logs[-1].endswith(": failed in readn2: Connection reset by peer")


def test_server_accept_checks_in_order() -> None:
    logs: list[str] = []
    _, transport = make_server(logs, get_key=lambda: b"short", verbose=lambda: True)
    assert transport.closed and "don't have a valid key configured" in logs[-1]
    _, transport = make_server(logs, acl_allows=lambda ip: False, verbose=lambda: True)
    assert transport.closed and logs[-1].endswith("dropped because of ACL")
    _, transport = make_server(logs, max_connections=lambda: 0)
    assert transport.closed
    assert logs[-1] == "Control connection died: Too many concurrent console connections"


def test_server_key_changed_mid_connection_is_used_for_reply() -> None:
    logs: list[str] = []
    keys = [KEY]
    new_key = bytes(32)

    def execute(line: str) -> str:
        keys[0] = new_key
        return "ok\n"

    server, transport = make_server(logs, execute=execute, get_key=lambda: keys[0])
    session = handshake(server, transport)
    server.data_received(protocol.frame(session.encrypt(KEY, b"setKey(...)")))
    length = protocol.decode_length(bytes(transport.written[:4]))
    assert session.decrypt(new_key, bytes(transport.written[4 : 4 + length])) == b"ok\n"
