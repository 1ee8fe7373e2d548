"""Traffic to replay: dnsperf-style query files and pcaps of real client queries."""
from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dpkt

from pydist.compare.tcpstream import TCPReassembler


@dataclass
class Query:
    """One query to send to both sides; `origin` says where it came from (file:line, pcap#n)."""

    origin: str
    wire: bytes
    tcp: bool = False
    source: str = "127.0.0.1"
    tls: bool = False          # DNS over TLS, to the config's first addTLSLocal listener
    https: bool = False        # DNS over HTTPS (POST), to the config's first addDOHLocal
    client: str = ""           # a pcap query's captured source address (the rules test bench)

    def describe(self) -> str:
        try:
            msg = dns.message.from_wire(self.wire)
            q = msg.question[0]
            text = f"{q.name} {dns.rdatatype.to_text(q.rdtype)}"
        except Exception:
            text = f"<{len(self.wire)} raw bytes>"
        extras = [("https" if self.https else "tls" if self.tls else "tcp" if self.tcp
                   else "udp")]
        if self.source != "127.0.0.1":
            extras.append(f"from {self.source}")
        return f"{text} ({', '.join(extras)}) [{self.origin}]"


@dataclass
class BadInput:
    """A line or packet that could not be used, with where it was."""

    origin: str
    reason: str


class PcapError(Exception):
    """The capture file cannot be read at all."""


def build_query(name: str, qtype: str, *, do: bool = False, cd: bool = False, rd: bool = True,
                edns: bool | None = None, rng: random.Random | None = None) -> bytes:
    """Wire form of a query as dnsperf would send it (no EDNS unless asked or +do)."""
    use_edns = edns if edns is not None else do
    msg = dns.message.make_query(name, qtype, use_edns=0 if use_edns else False, want_dnssec=do,
                                 payload=1232)
    msg.id = (rng or random).randrange(0, 65536)
    if not rd:
        msg.flags &= ~dns.flags.RD
    if cd:
        msg.flags |= dns.flags.CD
    return msg.to_wire()


def parse_query_line(line: str, origin: str, rng: random.Random) -> Query:
    """`name type [+tcp] [+tls] [+https] [+do] [+cd] [-rd] [+edns] [src=127.0.0.x]`; ValueError says what
    is wrong."""
    tokens = line.split()
    if len(tokens) < 2:
        raise ValueError("expected 'name type [options]'")
    name, qtype, options = tokens[0], tokens[1], tokens[2:]
    try:
        dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ValueError(f"bad name {name!r}: {exc}") from None
    try:
        dns.rdatatype.from_text(qtype.upper())
    except dns.exception.DNSException:
        raise ValueError(f"unknown query type {qtype!r}") from None
    flags = {"tcp": False, "tls": False, "https": False, "do": False, "cd": False, "rd": True,
             "edns": None}
    source = "127.0.0.1"
    for opt in options:
        if opt in ("+tcp", "+tls", "+https", "+do", "+cd", "+rd", "+edns"):
            flags[opt[1:]] = True
        elif opt in ("-rd", "-edns", "-tcp", "-tls", "-https", "-do", "-cd"):
            flags[opt[1:]] = False
        elif opt.startswith("src=") or opt.startswith("@"):
            source = opt.split("=", 1)[1] if opt.startswith("src=") else opt[1:]
            try:
                addr = ipaddress.ip_address(source)
            except ValueError:
                raise ValueError(f"bad source address {source!r}") from None
            if not (addr.version == 4 and addr.is_loopback):
                raise ValueError(f"source address {source} is not a 127.0.0.0/8 address")
        else:
            raise ValueError(f"unknown option {opt!r}")
    wire = build_query(name, qtype.upper(), do=bool(flags["do"]), cd=bool(flags["cd"]),
                       rd=bool(flags["rd"]), edns=flags["edns"], rng=rng)  # type: ignore[arg-type]
    tls, https = bool(flags["tls"]), bool(flags["https"])
    return Query(origin, wire, tcp=bool(flags["tcp"]) or tls or https, source=source, tls=tls,
                 https=https)


def read_query_file(path: str, rng: random.Random | None = None) -> tuple[list[Query], list[BadInput]]:
    """All usable queries of a query file, and every bad line with its number."""
    rng = rng or random.Random(53)
    queries: list[Query] = []
    bad: list[BadInput] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") else raw.strip()
            if not line:
                continue
            origin = f"{path}:{number}"
            try:
                queries.append(parse_query_line(line, origin, rng))
            except ValueError as exc:
                bad.append(BadInput(origin, f"{exc}: {raw.strip()!r}"))
    return queries, bad


def _is_query(payload: bytes) -> bool:
    """A parsable DNS message without the QR bit (what a client sends)."""
    try:
        msg = dns.message.from_wire(payload, ignore_trailing=True)
    except Exception:
        return False
    return not msg.flags & dns.flags.QR


def read_pcap(path: str) -> tuple[list[Query], list[BadInput]]:
    """Client queries of a pcap/pcapng, in capture order, with their transport."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise PcapError(f"cannot open {path}: {exc.strerror}") from None
    with handle:
        try:
            reader = dpkt.pcap.Reader(handle)
        except (ValueError, dpkt.dpkt.Error):
            handle.seek(0)
            try:
                reader = dpkt.pcapng.Reader(handle)
            except (ValueError, dpkt.dpkt.Error) as exc:
                raise PcapError(f"{path} is not a pcap or pcapng file ({exc})") from None
        link = reader.datalink()
        queries: list[Query] = []
        bad: list[BadInput] = []
        streams = TCPReassembler()
        try:
            for number, (_, frame) in enumerate(reader, 1):
                _decode_frame(path, number, link, frame, queries, bad, streams)
        except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError, struct.error, ValueError) as exc:
            bad.append(BadInput(f"{path}#{len(queries) + len(bad) + 1}", f"capture truncated or corrupt: {exc}"))
        for origin in streams.leftovers():
            bad.append(BadInput(origin, "TCP stream ends in the middle of a DNS message"))
    return queries, bad


def _decode_frame(path: str, number: int, link: int, frame: bytes, queries: list[Query],
                  bad: list[BadInput], streams: TCPReassembler) -> None:
    origin = f"{path}#{number}"
    try:
        if link == dpkt.pcap.DLT_EN10MB:
            ip = dpkt.ethernet.Ethernet(frame).data
        elif link == dpkt.pcap.DLT_LINUX_SLL:
            ip = dpkt.sll.SLL(frame).data
        elif link in (dpkt.pcap.DLT_RAW, 101, 228, 229):
            ip = dpkt.ip.IP(frame) if frame and frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)
        elif link == dpkt.pcap.DLT_NULL or link == dpkt.pcap.DLT_LOOP:
            ip = dpkt.loopback.Loopback(frame).data
        else:
            bad.append(BadInput(origin, f"unsupported link type {link}"))
            return
    except (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData, struct.error) as exc:
        bad.append(BadInput(origin, f"undecodable frame: {exc}"))
        return
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return
    client = str(ipaddress.ip_address(bytes(ip.src)))
    transport = ip.data
    if isinstance(transport, dpkt.udp.UDP) and transport.dport == 53:
        payload = bytes(transport.data)
        if _is_query(payload):
            queries.append(Query(origin, payload, tcp=False, client=client))
        elif payload:
            bad.append(BadInput(origin, "UDP packet to port 53 is not a DNS query"))
    elif isinstance(transport, dpkt.tcp.TCP) and transport.dport == 53:
        key = (bytes(ip.src), transport.sport, bytes(ip.dst), transport.dport)
        syn = bool(transport.flags & dpkt.tcp.TH_SYN)
        for first, message in streams.add(key, transport.seq, syn, bytes(transport.data), origin):
            if _is_query(message):
                queries.append(Query(first, message, tcp=True, client=client))
            else:
                bad.append(BadInput(first, "TCP message to port 53 is not a DNS query"))
    elif isinstance(transport, dpkt.tcp.TCP) and transport.dport == 853:
        if transport.flags & dpkt.tcp.TH_SYN and not transport.flags & dpkt.tcp.TH_ACK:
            bad.append(BadInput(origin, "DNS over TLS connection: encrypted, not replayed"))
