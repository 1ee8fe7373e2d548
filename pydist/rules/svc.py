"""SpoofSVCAction and newSVCRecordParameters (SVCB/HTTPS, RFC 9460) as dnsdist 1.7.3 builds them
(checked byte for byte): records of the query's type, target names uncompressed, params sorted
by key, `ech` sent as given, and the ipv4hint/ipv6hint addresses repeated as A/AAAA records of
the target in the additional section, their owner names compressed."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pydist.dns.reader import qname_labels
from pydist.dns.synth import opt_rr
from pydist.rules.actions import HEADER_MODIFY, Action, ResponseConfig
from pydist.rules.names import DNSName

KEYS = {"mandatory": 0, "alpn": 1, "no-default-alpn": 2, "port": 3, "ipv4hint": 4, "ech": 5,
        "ipv6hint": 6}


class SVCParamError(ValueError):
    """A parameter name dnsdist does not know (its text is dnsdist's)."""


def key_number(name: str) -> int:
    if name in KEYS:
        return KEYS[name]
    if name.startswith("key") and name[3:].isdigit():
        return int(name[3:])
    raise SVCParamError(f"SvcParam '{name}'is not recognized or in keyNNNN format")


@dataclass
class SVCRecordParameters:
    """One SVCB/HTTPS record: priority, target and its params as (key, value bytes)."""
    priority: int
    target: DNSName
    params: dict[int, bytes] = field(default_factory=dict)
    ipv4hints: list[bytes] = field(default_factory=list)
    ipv6hints: list[bytes] = field(default_factory=list)

    def rdata(self) -> bytes:
        out = self.priority.to_bytes(2, "big") + self.target.to_wire()
        for key in sorted(self.params):
            value = self.params[key]
            out += key.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value
        return out


def make_parameters(priority: int, target: DNSName, opts: dict[str, Any]) -> SVCRecordParameters:
    """From the option table: mandatory, alpn, noDefaultAlpn, port, ipv4hint, ech, ipv6hint,
    keyNNNN (raw values)."""
    p = SVCRecordParameters(priority, target)
    for name, value in opts.items():
        if name == "mandatory":
            keys = sorted(key_number(str(k)) for k in value)
            p.params[0] = b"".join(k.to_bytes(2, "big") for k in keys)
        elif name == "alpn":
            p.params[1] = b"".join(bytes([len(a)]) + a.encode("latin-1") for a in value)
        elif name == "noDefaultAlpn":
            if value:
                p.params[2] = b""
        elif name == "port":
            p.params[3] = int(value).to_bytes(2, "big")
        elif name in ("ipv4hint", "ipv6hint"):
            packed = [ipaddress.ip_address(str(a)).packed for a in value]
            (p.ipv4hints if name == "ipv4hint" else p.ipv6hints).extend(packed)
            p.params[4 if name == "ipv4hint" else 6] = b"".join(packed)
        elif name == "ech":
            p.params[5] = str(value).encode("latin-1")
        else:
            p.params[key_number(name)] = str(value).encode("latin-1")
    return p


class SpoofSVCAction(Action):
    def __init__(self, records: list[SVCRecordParameters],
                 config: ResponseConfig | None = None) -> None:
        self.records = records
        self.config = config or ResponseConfig()

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        edns_do = dq.edns_do() if dq.settings_add_edns and dq.opt_offset() >= 0 else None
        cfg = self.config
        if cfg.aa is not None:
            dq.set_flag(2, 0x04, cfg.aa)
        dq.set_flag(3, 0x20, bool(cfg.ad))
        if cfg.ra is not None:          # unlike the other spoofs, RA is not copied from RD
            dq.set_flag(3, 0x80, cfg.ra)
        dq.set_flag(2, 0x80, True)
        dq.rcode = 0
        ttl = cfg.ttl.to_bytes(4, "big")
        qtype = dq.qtype.to_bytes(2, "big")
        body = bytearray(dq.data[:dq.qname_end + 4])
        names = _Compressor(dq.data, dq.qname_end)
        for r in self.records:
            rdata = r.rdata()
            body += b"\xc0\x0c" + qtype + b"\x00\x01" + ttl + len(rdata).to_bytes(2, "big") + rdata
        extra = 0
        for rtype, hints in ((1, _hints(self.records, dq.qname, 4)),
                             (28, _hints(self.records, dq.qname, 6))):
            for owner, addr in hints:
                body += names.write(owner, len(body)) + rtype.to_bytes(2, "big") + b"\x00\x01"
                body += ttl + len(addr).to_bytes(2, "big") + addr
                extra += 1
        if edns_do is not None:
            body += opt_rr(dq.payload_size, edns_do)
            extra += 1
        body[4:12] = (b"\x00\x01" + len(self.records).to_bytes(2, "big") + b"\x00\x00"
                      + extra.to_bytes(2, "big"))
        dq.data = body
        dq.spoof = True
        return HEADER_MODIFY, None

    def __str__(self) -> str:
        return "spoof SVC record "


def _hints(records: list[SVCRecordParameters], qname: DNSName, family: int
           ) -> list[tuple[DNSName, bytes]]:
    """The (owner, address) hint records of one family as dnsdist 1.7.3 writes them: a set of
    (DNSName, ComboAddress), so duplicates go (names compared without case, the first
    spelling kept) and the order is theirs: DNSName's (the lowercased wire bytes compared
    from the end), then ComboAddress's (an IPv4 address as its in-memory 32-bit integer,
    that is its bytes from the last; IPv6 bytes as they are). A "." target is kept as the root
    name and written as the query's name."""
    seen: dict[tuple[bytes, bytes], tuple[DNSName, bytes]] = {}
    for r in records:
        owner = r.target if r.target.labels else qname     # "." sorts as itself: first
        name_key = r.target.to_wire().lower()[::-1]
        for addr in (r.ipv4hints if family == 4 else r.ipv6hints):
            seen.setdefault((name_key, addr[::-1] if family == 4 else addr), (owner, addr))
    return [seen[k] for k in sorted(seen)]


class _Compressor:
    """Owner-name compression against the question's name and owners written before."""

    def __init__(self, packet: bytes | bytearray, qname_end: int) -> None:
        self.known: dict[tuple[bytes, ...], int] = {}
        labels, off = [], 12
        for label in qname_labels(packet, 12):
            labels.append((off, label.lower()))
            off += len(label) + 1
        for i, (pos, _) in enumerate(labels):
            self.known.setdefault(tuple(label for _, label in labels[i:]), pos)

    def write(self, name: DNSName, at: int) -> bytes:
        out = b""
        labels = name.labels
        for i in range(len(labels)):
            suffix = tuple(x.lower() for x in labels[i:])
            pos = self.known.get(suffix)
            if pos is not None:
                return out + (0xC000 | pos).to_bytes(2, "big")
            if at + len(out) < 0x3FFF:
                self.known[suffix] = at + len(out)
            out += bytes([len(labels[i])]) + labels[i]
        return out + b"\x00"
