"""TCP reassembly of captured client streams: split, merged, retransmitted, reordered queries."""
from __future__ import annotations

import struct

import dns.message
import dpkt

from pydist.compare.tcpstream import TCPReassembler
from pydist.compare.traffic import read_pcap

KEY = (b"\xc0\x00\x02\x01", 40001, b"\xc0\x00\x02\x35", 53)


def framed(name: str) -> tuple[bytes, bytes]:
    wire = dns.message.make_query(name, "A").to_wire()
    return wire, struct.pack("!H", len(wire)) + wire


def test_query_split_over_segments_and_two_in_one() -> None:
    q1, f1 = framed("one.example.")
    q2, f2 = framed("two.example.")
    r = TCPReassembler()
    assert r.add(KEY, 1000, True, b"", "f#1") == []
    assert r.add(KEY, 1001, False, f1[:5], "f#2") == []
    got = r.add(KEY, 1006, False, f1[5:] + f2, "f#3")
    assert got == [("f#2", q1), ("f#3", q2)]
    assert r.leftovers() == []


def test_retransmission_and_reordering() -> None:
    q1, f1 = framed("one.example.")
    r = TCPReassembler()
    r.add(KEY, 99, True, b"", "f#1")
    assert r.add(KEY, 100 + 7, False, f1[7:], "f#3") == []      # came early: held
    assert r.add(KEY, 100, False, f1[:7], "f#2") == [("f#2", q1)]
    assert r.add(KEY, 100, False, f1[:7], "f#4") == []          # retransmitted: ignored
    assert r.leftovers() == []


def test_sequence_wraps_and_stream_cut_mid_message() -> None:
    q1, f1 = framed("one.example.")
    r = TCPReassembler()
    r.add(KEY, 0xFFFFFFFF, True, b"", "f#1")                     # next seq wraps to 0
    assert r.add(KEY, 0, False, f1, "f#2") == [("f#2", q1)]
    r.add(KEY, len(f1), False, f1[:4], "f#3")
    assert r.leftovers() == ["f#3"]


def _tcp_frame(seq: int, data: bytes, flags: int, dport: int = 53) -> bytes:
    tcp = dpkt.tcp.TCP(sport=40001, dport=dport, seq=seq, flags=flags, data=data)
    ip = dpkt.ip.IP(src=KEY[0], dst=KEY[2], p=dpkt.ip.IP_PROTO_TCP, data=tcp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x01" * 6,
                                        type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def test_pcap_with_split_tcp_query_and_dot(tmp_path) -> None:
    q1, f1 = framed("split.example.")
    path = tmp_path / "split.pcap"
    ack = dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH
    with open(path, "wb") as handle:
        w = dpkt.pcap.Writer(handle)
        w.writepkt(_tcp_frame(500, b"", dpkt.tcp.TH_SYN), ts=1.0)
        w.writepkt(_tcp_frame(501, f1[:3], ack), ts=1.1)
        w.writepkt(_tcp_frame(504, f1[3:], ack), ts=1.2)
        w.writepkt(_tcp_frame(7, b"", dpkt.tcp.TH_SYN, dport=853), ts=1.3)
    queries, bad = read_pcap(str(path))
    assert [(q.wire, q.tcp, q.origin.rsplit("#", 1)[1]) for q in queries] == [(q1, True, "2")]
    assert [(b.origin.rsplit("#", 1)[1], b.reason) for b in bad] == [
        ("4", "DNS over TLS connection: encrypted, not replayed")]
