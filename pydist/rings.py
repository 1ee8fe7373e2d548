"""Ring buffers of recent queries and responses, read by top*, grepq and dynamic blocks.

Query entries are (time, client, packet, protocol); response entries are (time, client,
packet, latency µs or -1 for a timeout, backend "ip:port" or None, protocol).
"""
from __future__ import annotations

import ipaddress
from collections import deque
from typing import Iterable

from pydist.dns.netmask import format_address, parse_netmask, AddressError
from pydist.dns.wire import name_to_text, qtype_to_text, question_end, text_to_wire, WireError
from pydist.transport import Transport


class Rings:
    """Queries: (time, client addr, packet, protocol). Responses add latency µs and backend."""

    def __init__(self, size: int = 10000) -> None:
        self.queries: deque = deque(maxlen=max(1, size))
        self.responses: deque = deque(maxlen=max(1, size))


RCODE_NAMES = ("No Error", "Form Error", "Server Failure", "Non-Existent domain",
               "Not Implemented", "Query Refused", "Name Exists when it should not",
               "RR Set Exists when it should not", "RR Set that should exist does not",
               "Server Not Authoritative for zone / Not Authorized",
               "Name not contained in zone")
GREPQ_FMT = "%-7s %-47s %-12s %-12s %-5s %-25s %-5s %-6s %-2s %-2s %-2s %s\n"


def ring_name(proto: object) -> str:
    """The Protocol column: entries hold a Transport (pydist.transport)."""
    try:
        return Transport(proto).ring_name
    except (ValueError, TypeError):
        return "DoUDP"


def rcode_name(rcode: int) -> str:
    """RCode::to_s: dnsdist's long rcode names."""
    return RCODE_NAMES[rcode] if rcode < len(RCODE_NAMES) else f"Err#{rcode}"


class GrepFilter:
    """grepq's pattern list: a netmask, a name suffix and/or an "NNms" latency floor."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.net: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        self.suffix: list[str] | None = None
        self.msec = -1
        for p in patterns:
            self._add(p)

    def _add(self, p: str) -> None:
        try:
            self.net = parse_netmask(p)
            return
        except AddressError:
            pass
        if p.endswith("ms") and p[:-2].isdigit():
            self.msec = int(p[:-2])
            return
        try:
            text_to_wire(p)
        except (WireError, ValueError):
            raise ValueError(f"Could not parse '{p}' as domain name or netmask") from None
        self.suffix = [lab for lab in p.lower().rstrip(".").split(".") if lab] if p != "." else []

    def match(self, client: tuple, pkt: bytes) -> bool:
        if self.net is not None:
            try:
                if ipaddress.ip_address(client[0]) not in self.net:
                    return False
            except ValueError:
                return False
        if self.suffix is not None:
            labels = name_to_text(pkt).lower().rstrip(".").split(".")
            n = len(self.suffix)
            if n and labels[-n:] != self.suffix:
                return False
        return True


def _flags(pkt: bytes) -> tuple[str, str, str]:
    return ("TC" if pkt[2] & 0x02 else "", "RD" if pkt[2] & 0x01 else "",
            "AA" if pkt[2] & 0x04 else "")


def _row(when: float, now: float, client: tuple, proto: object, server: str, pkt: bytes,
         lat: str, rcode: str) -> str:
    end = question_end(pkt)
    qtype = int.from_bytes(pkt[end:end + 2], "big")
    return GREPQ_FMT % ("%.1f" % (when - now), format_address(client[0], client[1]),
                        ring_name(proto), server, int.from_bytes(pkt[:2], "big"),
                        name_to_text(pkt), qtype_to_text(qtype), lat, *_flags(pkt), rcode)


def grepq(rings: Rings, flt: GrepFilter, limit: int | None, now: float) -> str:
    """grepq(): newest matching queries and responses (limit applies to each), oldest first."""
    out: list[tuple[float, int, str]] = []
    seq = 0
    if flt.msec < 0:
        num = 0
        for when, client, pkt, proto, *_ in reversed(list(rings.queries)):
            if len(pkt) < 17 or not client or not flt.match(client, pkt):
                continue
            out.append((when, seq, _row(when, now, client, proto, "", pkt, "", "Question")))
            seq += 1
            num += 1
            if limit and num == limit:
                break
    num = 0
    for entry in reversed(list(rings.responses)):
        when, client, pkt, usec, server = entry[:5]
        proto = entry[5] if len(entry) > 5 else 0
        if len(pkt) < 17 or not client or server is None or not flt.match(client, pkt):
            continue
        if flt.msec >= 0 and (usec < 0 or usec // 1000 <= flt.msec):
            continue
        rcode = pkt[3] & 0x0F
        extra = "" if rcode else ". %d answers" % int.from_bytes(pkt[6:8], "big")
        lat = "T.O" if usec < 0 else "%.1f" % (usec / 1000.0)
        out.append((when, seq, _row(when, now, client, proto, server, pkt, lat,
                                     rcode_name(rcode) + extra)))
        seq += 1
        num += 1
        if limit and num == limit:
            break
    out.sort()
    head = GREPQ_FMT % ("Time", "Client", "Protocol", "Server", "ID", "Name", "Type", "Lat.",
                        "TC", "RD", "AA", "Rcode")
    return head + "".join(r for _, _, r in out)


def response_latency(rings: Rings) -> str:
    """showResponseLatency(): the average, then 15 doubling bins from 0.1 ms, 70 stars wide."""
    bins = [100.0 * 2 ** i for i in range(15)]
    counts = [0] * 15
    total = 0.0
    size = 0
    for entry in list(rings.responses):
        usec = entry[3]
        if usec < 0 or entry[4] is None:
            continue
        size += 1
        total += usec
        for i, b in enumerate(bins):
            if usec <= b:
                counts[i] += 1
                break
    if size == 0:
        return "No traffic yet.\n"
    out = ["Average response latency: %.02f msec\n" % (0.001 * total / size), "%7s\t\n" % "msec"]
    highest = max(counts)
    for b, n in zip(bins, counts):
        stars = int(70.0 * n / highest) if highest else 0
        ch = "*"
        if not stars and n:
            stars, ch = 1, (":" if 70.0 * n / highest > 0.5 else ".")
        out.append("%7.2f\t%s\n" % (b / 1000.0, ch * stars))
    return "".join(out)
