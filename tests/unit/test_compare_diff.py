"""The answer comparison, query-file and pcap readers of pydist-compare, without any server."""
from __future__ import annotations

import random
import struct

import dns.flags
import dns.message
import dns.rrset
import dpkt
import pytest

from pydist.compare.diff import compare_answers, compare_lines
from pydist.compare.responder import build_answer
from pydist.compare.traffic import PcapError, parse_query_line, read_pcap, read_query_file
from pydist.compare.wrapper import WrapperPlan, normalize_upstream, render_wrapper


def _answer(query: dns.message.Message, *rrsets: dns.rrset.RRset, rcode: int = 0) -> dns.message.Message:
    resp = dns.message.make_response(query)
    resp.set_rcode(rcode)
    for rrset in rrsets:
        resp.answer.append(rrset)
    return resp


@pytest.fixture
def query() -> dns.message.Message:
    return dns.message.make_query("example.com.", "A")


def test_order_of_records_does_not_matter(query):
    a = _answer(query, dns.rrset.from_text("example.com.", 300, "IN", "A", "192.0.2.1", "192.0.2.2"))
    b = _answer(query, dns.rrset.from_text("example.com.", 300, "IN", "A", "192.0.2.2", "192.0.2.1"))
    assert compare_answers(query.to_wire(), a.to_wire(), b.to_wire()) == []


def test_different_rdata_and_rcode_are_reported(query):
    a = _answer(query, dns.rrset.from_text("example.com.", 300, "IN", "A", "192.0.2.1"))
    b = _answer(query, dns.rrset.from_text("example.com.", 300, "IN", "A", "192.0.2.9"), rcode=3)
    kinds = {d.kind for d in compare_answers(query.to_wire(), a.to_wire(), b.to_wire())}
    assert kinds == {"answer", "rcode"}


def test_ttl_tolerance(query):
    a = _answer(query, dns.rrset.from_text("example.com.", 300, "IN", "A", "192.0.2.1"))
    b = _answer(query, dns.rrset.from_text("example.com.", 299, "IN", "A", "192.0.2.1"))
    c = _answer(query, dns.rrset.from_text("example.com.", 60, "IN", "A", "192.0.2.1"))
    assert compare_answers(query.to_wire(), a.to_wire(), b.to_wire(), ttl_tolerance=1) == []
    assert [d.kind for d in compare_answers(query.to_wire(), a.to_wire(), c.to_wire())] == ["ttl"]


def test_dropped_flags_and_edns(query):
    a = _answer(query)
    assert [d.kind for d in compare_answers(query.to_wire(), a.to_wire(), None)] == ["answered-vs-dropped"]
    assert compare_answers(query.to_wire(), None, None) == []
    b = _answer(query)
    b.flags |= dns.flags.TC
    assert [d.kind for d in compare_answers(query.to_wire(), a.to_wire(), b.to_wire())] == ["flags"]
    c = _answer(query)
    c.use_edns(0, 0, 1232)
    assert [d.kind for d in compare_answers(query.to_wire(), a.to_wire(), c.to_wire())] == ["edns"]
    assert [d.kind for d in compare_answers(query.to_wire(), a.to_wire(), b"\x00\x01garbage")] == ["malformed"]


def test_compare_lines_lists_each_side():
    diffs = compare_lines("console", ["a", "b"], ["a", "c"])
    assert len(diffs) == 1 and "only on side A: b" in diffs[0].detail and "only on side B: c" in diffs[0].detail


def test_query_file_lines_and_bad_lines(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("# comment\nexample.com A\nexample.net AAAA +tcp +do -rd src=127.0.0.7\n"
                    "only-a-name\nexample.com BOGUS\nexample.com A src=192.0.2.1\nexample.com A +what\n")
    queries, bad = read_query_file(str(path), random.Random(1))
    assert len(queries) == 2
    second = dns.message.from_wire(queries[1].wire)
    assert queries[1].tcp and queries[1].source == "127.0.0.7"
    assert second.flags & dns.flags.RD == 0 and second.ednsflags & dns.flags.DO
    assert [b.origin.rsplit(":", 1)[1] for b in bad] == ["4", "5", "6", "7"]


def test_parse_query_line_rejects_non_loopback_source():
    with pytest.raises(ValueError, match="not a 127"):
        parse_query_line("example.com A src=10.0.0.1", "x", random.Random(1))


def _udp_frame(payload: bytes, dport: int = 53) -> bytes:
    udp = dpkt.udp.UDP(sport=40000, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 53]), p=dpkt.ip.IP_PROTO_UDP, data=udp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x01" * 6, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def _tcp_frame(payload: bytes) -> bytes:
    tcp = dpkt.tcp.TCP(sport=40001, dport=53, flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                       data=struct.pack("!H", len(payload)) + payload)
    ip = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 53]), p=dpkt.ip.IP_PROTO_TCP, data=tcp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x01" * 6, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def test_pcap_queries_in_order_with_transport(tmp_path):
    q1 = dns.message.make_query("one.example.", "A").to_wire()
    q2 = dns.message.make_query("two.example.", "AAAA").to_wire()
    path = tmp_path / "c.pcap"
    with open(path, "wb") as handle:
        writer = dpkt.pcap.Writer(handle)
        writer.writepkt(_udp_frame(q1), ts=1.0)
        writer.writepkt(_udp_frame(b"\x00\x01not dns at all"), ts=1.5)
        writer.writepkt(_tcp_frame(q2), ts=2.0)
    queries, bad = read_pcap(str(path))
    assert [q.wire for q in queries] == [q1, q2]
    assert [q.tcp for q in queries] == [False, True]
    assert [b.origin.rsplit("#", 1)[1] for b in bad] == ["2"]


def test_unreadable_pcap(tmp_path):
    path = tmp_path / "bad.pcap"
    path.write_bytes(b"this is not a capture")
    with pytest.raises(PcapError, match="not a pcap"):
        read_pcap(str(path))
    with pytest.raises(PcapError, match="cannot open"):
        read_pcap(str(tmp_path / "missing.pcap"))


def test_responder_is_deterministic_and_tags_the_stand_in():
    wire = dns.message.make_query("www.example.com.", "A").to_wire()
    one, again, other = build_answer(wire, 0), build_answer(wire, 0), build_answer(wire, 1)
    assert compare_answers(wire, one, again) == []
    assert [d.kind for d in compare_answers(wire, one, other)] == ["answer"]
    nx = dns.message.from_wire(build_answer(dns.message.make_query("x.invalid.", "A").to_wire(), 0))
    assert nx.rcode() == 3


def test_wrapper_names_everything_it_moves():
    assert normalize_upstream("9.9.9.9") == "9.9.9.9:53"
    assert normalize_upstream("2620:fe::fe") == "[2620:fe::fe]:53"
    assert normalize_upstream("[2620:fe::fe]:853") == "[2620:fe::fe]:853"
    text = render_wrapper(WrapperPlan("cfg.conf", [1001, 1002], [2001], 3001, 4001, "k", "notes",
                                      {"8.8.8.8:853": "127.0.0.1:5301"}))
    for name in ("newServer", "setLocal", "addLocal", "addTLSLocal", "addDOHLocal", "addDNSCryptBind",
                 "controlSocket", "webserver", "carbonServer", "setSecurityPollSuffix"):
        assert f"{name} = function" in text
    assert '["8.8.8.8:853"] = "127.0.0.1:5301"' in text
    assert 'loadstring(src, "chunk")' in text


def test_known_pydist_metric_additions_are_notes_not_differences():
    from pydist.compare.metrics import compare_metrics, known_additions
    a = {"dnsdist_queries{}": 3.0}
    b = {"dnsdist_queries{}": 3.0, "dnsdist_latency_dot_avg100{}": 12.5,
         "dnsdist_latency_dot_avg1000{}": 1.0}
    assert compare_metrics(a, b, str, str) == []
    (note,) = known_additions(a, b)
    assert "dnsdist_latency_dot_avg100, dnsdist_latency_dot_avg1000" in note
    b["dnsdist_other{}"] = 1.0          # anything else on one side only is still a difference
    assert [d.kind for d in compare_metrics(a, b, str, str)] == ["metric-names"]
