"""pydist.dnscrypt without sockets: the boxes against libsodium's own (the library dnsdist
links), certificates and key files, the certificate set of a listener, and the exchange on
bytes, bad input included (never an exception, always a drop)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import time

import dns.message
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydist.dnscrypt import cert as C
from pydist.dnscrypt import crypto
from pydist.dnscrypt.context import DNSCryptContext, DNSCryptError
from pydist.dnscrypt.query import DNSCryptQuery, read_packet, truncated
from pydist.rules.names import DNSName
from tests.helpers.dnscrypt import DNSCryptClient, unpad

PROVIDER = "2.dnscrypt-cert.example"


def system_sodium() -> ctypes.CDLL:
    """The full libsodium (Debian's libsodium23, which dnsdist itself depends on)."""
    name = ctypes.util.find_library("sodium")
    assert name, "libsodium (Debian libsodium23, a dependency of dnsdist) is required"
    return ctypes.CDLL(name)


def test_xchacha_box_is_libsodiums() -> None:
    lib = system_sodium()
    pk, sk = crypto.box_keypair()
    pk2, sk2 = crypto.box_keypair()
    key = crypto.shared_key(2, pk2, sk)
    ref = ctypes.create_string_buffer(32)
    lib.crypto_box_curve25519xchacha20poly1305_beforenm(ref, pk2, sk)
    assert key == ref.raw
    for size in (0, 1, 31, 32, 33, 64, 500):
        nonce, msg = os.urandom(24), os.urandom(size)
        out = ctypes.create_string_buffer(size + 16)
        lib.crypto_box_curve25519xchacha20poly1305_easy_afternm(out, msg, ctypes.c_ulonglong(size),
                                                                nonce, key)
        assert crypto.seal(2, key, nonce, msg) == out.raw
        assert crypto.open_box(2, crypto.shared_key(2, pk, sk2), nonce, out.raw) == msg
        bad = bytearray(out.raw)
        bad[0] ^= 1
        assert crypto.open_box(2, key, nonce, bytes(bad)) is None


def test_xsalsa_box_and_stream_are_libsodiums() -> None:
    lib = system_sodium()
    pk, sk = crypto.box_keypair()
    key = crypto.shared_key(1, pk, sk)
    nonce, msg = os.urandom(24), os.urandom(100)
    out = ctypes.create_string_buffer(116)
    lib.crypto_box_easy_afternm(out, msg, ctypes.c_ulonglong(100), nonce, key)
    assert crypto.seal(1, key, nonce, msg) == out.raw
    assert crypto.open_box(1, key, nonce, out.raw[:-1]) is None
    stream = ctypes.create_string_buffer(4)
    lib.crypto_stream(stream, ctypes.c_ulonglong(4), nonce, sk)
    assert crypto.xsalsa20_stream(4, nonce, sk) == stream.raw


def test_low_order_public_key_gives_no_shared_key() -> None:
    _, sk = crypto.box_keypair()
    assert crypto.shared_key(1, bytes(32), sk) is None
    assert crypto.shared_key(2, bytes(32), sk) is None
    assert crypto.shared_key(0, crypto.box_keypair()[0], sk) is None     # unknown es-version


def test_certificate_layout_and_signature() -> None:
    ppk, psk = crypto.sign_keypair()
    cert, key = C.generate_certificate(psk, 7, 1000, 2000, 2)
    raw = cert.raw
    assert len(raw) == 124 and raw[:8] == b"DNSC\x00\x02\x00\x00"
    assert cert.resolver_public_key == crypto.box_public(key)
    assert cert.client_magic == cert.resolver_public_key[:8]
    assert (cert.serial, cert.ts_start, cert.ts_end, cert.version) == (7, 1000, 2000, 2)
    assert cert.signed_by(ppk) and not cert.signed_by(crypto.sign_keypair()[0])
    assert cert.is_valid(1000) and cert.is_valid(2000) and not cert.is_valid(2001)


def test_fingerprint_format() -> None:
    assert C.fingerprint(bytes(range(32))) == \
        "0001:0203:0405:0607:0809:0A0B:0C0D:0E0F:1011:1213:1415:1617:1819:1A1B:1C1D:1E1F"


def test_key_files_read_their_first_bytes(tmp_path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"x" * 123)
    with pytest.raises(C.DNSCryptFileError, match="Invalid dnscrypt certificate file"):
        C.load_cert(str(short))
    with pytest.raises(C.DNSCryptFileError, match="Invalid DNSCrypt key file"):
        C.load_resolver_key(str(tmp_path / "missing"))
    long = tmp_path / "long"
    long.write_bytes(b"k" * 40)
    assert C.load_resolver_key(str(long)) == b"k" * 32


def make_context(tmp_path, specs: list[tuple[int, int, int]]) -> tuple[DNSCryptContext, bytes]:
    """A context over files (serial, version, end) signed by a fresh provider key."""
    ppk, psk = crypto.sign_keypair()
    paths = []
    for serial, version, end in specs:
        cert, key = C.generate_certificate(psk, serial, 0, end, version)
        cpath, kpath = tmp_path / f"{serial}.cert", tmp_path / f"{serial}.key"
        cpath.write_bytes(cert.raw)
        kpath.write_bytes(key)
        paths.append((str(cpath), str(kpath)))
    return DNSCryptContext(PROVIDER, DNSName.from_text(PROVIDER).to_wire(), paths), ppk


def test_certificate_answer_lists_active_valid_certificates(tmp_path) -> None:
    far = int(time.time()) + 3600
    ctx, _ = make_context(tmp_path, [(1, 1, far), (2, 2, far), (3, 2, 10)])
    ctx.mark_inactive(2)
    q = dns.message.make_query(PROVIDER.upper(), "TXT", use_edns=False)
    got = read_packet(ctx, q.to_wire(), False, time.time())
    assert got is not None and got[1] is None
    answer = dns.message.from_wire(got[0])
    assert answer.id == q.id and answer.flags == 0x8000
    assert str(answer.question[0].name) == PROVIDER.upper() + "."
    (rrset,) = answer.answer
    assert rrset.ttl == 3600 and [C.DNSCryptCert(b"".join(r.strings)).serial for r in rrset] == [1]
    for other in (dns.message.make_query(PROVIDER, "A"), dns.message.make_query("x.example", "TXT")):
        assert read_packet(ctx, other.to_wire(), False, time.time()) is None


def test_marking_and_removing(tmp_path) -> None:
    far = int(time.time()) + 3600
    ctx, _ = make_context(tmp_path, [(1, 1, far), (2, 2, far)])
    with pytest.raises(DNSCryptError, match="No inactive certificate found with this serial"):
        ctx.mark_active(1)
    with pytest.raises(DNSCryptError, match="No active certificate found with this serial"):
        ctx.mark_inactive(9)
    ctx.mark_inactive(1)
    # inactive: not advertised, still taken for queries (clients holding it keep working)
    assert ctx.pair_for_magic(ctx.pairs[0].cert.client_magic, time.time()) is ctx.pairs[0]
    ctx.remove_inactive_certificate(1)
    assert [p.cert.serial for p in ctx.pairs] == [2]
    with pytest.raises(DNSCryptError, match="same serial"):
        ctx.add_new_certificate(ctx.pairs[0].cert, ctx.pairs[0].private_key)
    ctx.reload_certificates()
    assert [(p.cert.serial, p.active) for p in ctx.pairs] == [(1, True), (2, True)]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("tcp", [False, True])
def test_exchange_round_trip(tmp_path, version: int, tcp: bool) -> None:
    ctx, ppk = make_context(tmp_path, [(version, version, int(time.time()) + 3600)])
    cert = ctx.pairs[0].cert
    client = DNSCryptClient(("127.0.0.1", 1), PROVIDER, ppk)
    q = dns.message.make_query("www.example", "A")
    packet, nonce = client.encrypt(q.to_wire(), cert, tcp)
    got = read_packet(ctx, packet, tcp, time.time())
    assert got is not None and got[0] == q.to_wire()
    state = got[1]
    assert isinstance(state, DNSCryptQuery)
    answer = dns.message.make_response(q).to_wire()
    reply = client.decrypt(state.encrypt_response(answer, tcp), cert, nonce)
    assert reply.wire == answer
    # the padding length depends only on the key and the client nonce
    again = read_packet(ctx, client.encrypt(q.to_wire(), cert, tcp, nonce=nonce)[0], tcp, 0)
    assert again is not None
    assert len(again[1].encrypt_response(answer, tcp)) == reply.size


def test_answer_too_large_to_seal_is_dropped(tmp_path) -> None:
    ctx, _ = make_context(tmp_path, [(1, 2, int(time.time()) + 3600)])
    state = DNSCryptQuery(ctx.pairs[0], bytes(32), b"N" * 12, 4300)
    assert state.encrypt_response(bytes(4048), False) is None      # 48 + 4048 = 4096
    assert state.encrypt_response(bytes(4047), False) is not None
    assert state.encrypt_response(bytes(65535 - 48), True) is None


def test_padding_size_as_dnsdist_computes_it(tmp_path) -> None:
    ctx, _ = make_context(tmp_path, [(1, 1, int(time.time()) + 3600)])
    pair = ctx.pairs[0]
    nonce = b"N" * 12
    state = DNSCryptQuery(pair, b"", nonce, 200)
    rnd = int.from_bytes(crypto.xsalsa20_stream(4, nonce * 2, pair.private_key), "little")
    size = 86 + rnd % (342 - 86 + 1)
    size = min(size + 64 - size % 64, 342)
    assert state.padding_size(86, 342) == size - 86


def test_udp_answer_longer_than_the_padded_query_is_truncated() -> None:
    q = dns.message.make_query("big.example", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("big.example.", 60, "IN", "A",
                                        *[f"192.0.2.{i}" for i in range(30)]))
    cut = truncated(r.to_wire(), 188)
    assert cut is not None and cut[12:] == q.to_wire()[12:]      # the question only
    msg = dns.message.from_wire(cut)
    assert msg.flags & 0x0200 and not msg.answer
    assert truncated(r.to_wire()[:12], 188) == r.to_wire()[:2] + bytes((r.to_wire()[2] | 2,)) \
        + r.to_wire()[3:6] + bytes(6)


def test_bad_queries_are_dropped(tmp_path) -> None:
    ctx, ppk = make_context(tmp_path, [(1, 1, int(time.time()) + 3600)])
    cert = ctx.pairs[0].cert
    client = DNSCryptClient(("127.0.0.1", 1), PROVIDER, ppk)
    wire = dns.message.make_query("www.example", "A").to_wire()
    packet, _ = client.encrypt(wire, cert)
    now = time.time()
    flipped = bytearray(packet)
    flipped[100] ^= 1
    bad = {
        "magic": b"XXXXXXXX" + packet[8:],
        "flipped": bytes(flipped),
        "wrong key": packet[:8] + os.urandom(32) + packet[40:],
        "short udp": client.encrypt(wire, cert, pad_to=len(wire) + 1)[0],
        "tcp padding over 256": client.encrypt(wire, cert, True, pad_to=len(wire) + 300)[0],
    }
    for name, data in bad.items():
        assert read_packet(ctx, data, name.startswith("tcp"), now) is None, name
    key = crypto.shared_key(1, cert.resolver_public_key, client.secret)
    nonce = os.urandom(12)
    no_pad = cert.client_magic + client.public + nonce + crypto.seal(
        1, key, nonce + bytes(12), wire + bytes(200))
    assert read_packet(ctx, no_pad, False, now) is None
    assert unpad(b"abc\x80\x00") == (b"abc", 2)


@given(st.binary(max_size=400), st.booleans())
def test_garbage_never_raises(data: bytes, tcp: bool) -> None:
    ctx = GARBAGE_CTX
    got = read_packet(ctx, data, tcp, time.time())
    assert got is None or got[1] is None


def _garbage_ctx() -> DNSCryptContext:
    ctx = DNSCryptContext.__new__(DNSCryptContext)
    ctx.provider_name, ctx.provider_wire, ctx.paths = PROVIDER, DNSName.from_text(
        PROVIDER).to_wire(), []
    _, psk = crypto.sign_keypair()
    cert, key = C.generate_certificate(psk, 1, 0, 2 ** 32 - 1, 2)
    ctx.pairs = []
    ctx.add_new_certificate(C.DNSCryptCert(b"DNSC" + cert.raw[4:104] + b"\x00" * 8
                                           + cert.raw[112:]), key)
    return ctx


GARBAGE_CTX = _garbage_ctx()     # its client magic is zeros: random input reaches the box


def test_shared_keys_remembered_per_pair_and_bounded(tmp_path, monkeypatch) -> None:
    import pydist.dnscrypt.context as context
    monkeypatch.setattr(context, "SHARED_KEYS", 2)
    ctx, _ = make_context(tmp_path, [(1, 2, int(time.time()) + 3600)])
    pair = ctx.pairs[0]
    clients = [crypto.box_keypair()[0] for _ in range(3)]
    for pk in clients:
        assert pair.shared_key(pk) == crypto.shared_key(2, pk, pair.private_key)
    assert len(pair.shared) == 1                   # started over at the bound
    assert pair.shared_key(bytes(32)) is None and pair.shared[bytes(32)] is None
