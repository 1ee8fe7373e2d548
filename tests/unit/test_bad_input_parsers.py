"""Parsers that read what clients, proxies and files hand us never raise on garbage: the
incoming proxy protocol header (UDP and TCP, cut anywhere), the CDB reader on damaged files,
and the destination read from recvmsg's ancillary data."""
from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pydist.dns.proxyprotocol import SIGNATURE, proxy_header
from pydist.frontend.pktinfo import destination
from pydist.frontend.proxied import read_header
from pydist.kvstore import CDBFile
from tests.helpers.cdb import write_cdb

VALID = proxy_header(("192.0.2.1", 5353), ("127.0.0.1", 53), False, [(2, b"tlv")])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_proxy_header_garbage(data: bytes) -> None:
    for raw in (data, SIGNATURE + data):
        result = read_header(raw, 512)
        assert result is None or result is False or (
            isinstance(result, tuple) and result[3] <= len(raw))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID)), st.binary(max_size=8),
       st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(0, 255))
def test_proxy_header_cut_or_flipped(cut: int, tail: bytes, pos: int, byte: int) -> None:
    """A valid header cut short is incomplete (TCP waits for more); one with a byte changed
    is read or refused, never an exception."""
    head = VALID[:cut]
    result = read_header(head, 512)
    if cut < len(VALID):
        assert result is False or result is None
    else:
        assert isinstance(result, tuple) and result[0] == ("192.0.2.1", 5353)
    flipped = bytearray(VALID)
    flipped[pos] = byte
    result = read_header(bytes(flipped) + tail, 512)
    assert result is None or result is False or (
        isinstance(result, tuple) and result[3] <= len(flipped) + len(tail))


def test_proxy_header_over_the_payload_limit_is_refused() -> None:
    big = proxy_header(("192.0.2.1", 1), ("127.0.0.1", 53), False, [(2, b"x" * 600)])
    assert read_header(big, 512) is None
    assert isinstance(read_header(big, 1024), tuple)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=4096), st.binary(max_size=20))
def test_cdb_reader_on_damaged_files(data: bytes, key: bytes) -> None:
    try:
        db = CDBFile(data)
    except ValueError:
        return                  # too short to be a CDB file: refused at load
    assert db.get(key) is None or isinstance(db.get(key), bytes)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.integers(0, 255))
def test_cdb_reader_on_a_file_damaged_in_place(tmp_path_factory, pos: int, byte: int) -> None:
    path = Path(tmp_path_factory.mktemp("cdb")) / "t.cdb"
    write_cdb(path, {f"k{i}".encode(): os.urandom(8) for i in range(40)})
    data = bytearray(path.read_bytes())
    data[pos % len(data)] = byte
    db = CDBFile(bytes(data))
    for i in range(40):
        assert db.get(f"k{i}".encode()) is None or isinstance(db.get(f"k{i}".encode()), bytes)


def test_pktinfo_without_or_with_short_ancillary_data() -> None:
    assert destination([], 53) is None
    assert destination([(socket.IPPROTO_IP, 8, b"\x00" * 4)], 53) is None
    reply, local = destination([(socket.IPPROTO_IP, 8, struct.pack("=i4s4s", 1, bytes(4),
                                                                     bytes([127, 0, 0, 2])))], 53)
    assert local == ("127.0.0.2", 53) and reply[0][2][4:8] == bytes([127, 0, 0, 2])
