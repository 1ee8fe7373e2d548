"""Query actions that build or edit records: NegativeAndSOAAction, SetEDNSOptionAction and
TeeAction (facts §10.3), with dnsdist 1.7.3's texts and wire layouts (checked against it)."""
from __future__ import annotations

import socket
from typing import Any

from pydist.dns.ecs import query_for_backend
from pydist.dns.netmask import format_address
from pydist.dns.synth import opt_rr
from pydist.rules.actions import CONTINUE, HEADER_MODIFY, Action, ResponseConfig
from pydist.rules.names import DNSName

DEFAULT_OPT_PAYLOAD = 512    # the OPT dnsdist adds to a query that had none


def negative_answer(dq: Any, nxd: bool, zone: DNSName, ttl: int, mname: DNSName,
                    rname: DNSName, numbers: tuple[int, int, int, int, int],
                    config: ResponseConfig | None) -> None:
    """NXDOMAIN or NODATA with the SOA in the additional section (1.7.3 puts it there),
    names uncompressed, then a fresh OPT when the query had EDNS. Without a config (Lua's
    dq:setNegativeAndAdditionalSOA) the other header flags are left as they are."""
    edns_do = dq.edns_do() if dq.settings_add_edns and dq.opt_offset() >= 0 else None
    if config is not None:
        config.apply(dq)
    dq.set_flag(2, 0x80, True)
    dq.rcode = 3 if nxd else 0
    rdata = mname.to_wire() + rname.to_wire() + b"".join(
        (n & 0xFFFFFFFF).to_bytes(4, "big") for n in numbers)
    soa = (zone.to_wire() + b"\x00\x06\x00\x01" + (ttl & 0xFFFFFFFF).to_bytes(4, "big")
           + len(rdata).to_bytes(2, "big") + rdata)
    body = bytearray(dq.data[:12]) + dq.data[12:dq.qname_end + 4]
    arcount = 1 if edns_do is None else 2
    body[4:12] = b"\x00\x01\x00\x00\x00\x00" + arcount.to_bytes(2, "big")
    body += soa
    if edns_do is not None:
        body += opt_rr(dq.payload_size, edns_do)
    dq.data = body
    dq.spoof = True


class NegativeAndSOAAction(Action):
    def __init__(self, nxd: bool, zone: DNSName, ttl: int, mname: DNSName, rname: DNSName,
                 numbers: tuple[int, int, int, int, int],
                 config: ResponseConfig | None = None) -> None:
        self.nxd, self.zone, self.ttl, self.mname, self.rname = nxd, zone, ttl, mname, rname
        self.numbers = numbers
        self.config = config or ResponseConfig()

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        negative_answer(dq, self.nxd, self.zone, self.ttl, self.mname, self.rname,
                        self.numbers, self.config)
        return HEADER_MODIFY, None

    def __str__(self) -> str:
        return ("NXD " if self.nxd else "NODATA") + " with SOA"


def add_edns_option(dq: Any, code: int, data: bytes) -> bool:
    """Append an option to the query's OPT (adding an OPT when it has none); False when the
    query's additional section holds other records (left alone)."""
    option = code.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data
    d = dq.data
    off = dq.opt_offset()
    if off >= 0:
        rdlen = (d[off + 9] << 8) | d[off + 10]
        end = off + 11 + rdlen
        d[end:end] = option
        d[off + 9:off + 11] = (rdlen + len(option)).to_bytes(2, "big")
        return True
    if d[10:12] != b"\x00\x00" or len(d) != dq.qname_end + 4:
        return False
    d += (b"\x00\x00\x29" + DEFAULT_OPT_PAYLOAD.to_bytes(2, "big") + b"\x00\x00\x00\x00"
          + len(option).to_bytes(2, "big") + option)
    d[10:12] = b"\x00\x01"
    return True


class SetEDNSOptionAction(Action):
    def __init__(self, code: int, data: bytes) -> None:
        self.code, self.data = code, data

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        add_edns_option(dq, self.code, self.data)
        return CONTINUE

    def __str__(self) -> str:
        return f"add EDNS Option (code={self.code})"


class TeeAction(Action):
    """Copies UDP queries to another server and goes on; TCP queries are not copied (as
    dnsdist). Answers are read and counted, never relayed. With addECS the copy carries the
    ECS option the query would get towards a backend (a query too garbled for one is not
    copied, as in dnsdist)."""

    counters = ("queries", "responses", "send_errors", "tcp_drops", "recv_errors", "rcodes")

    def __init__(self, host: str, port: int, add_ecs: bool = False) -> None:
        self.host, self.port, self.add_ecs = host, port, add_ecs
        self.sock: socket.socket | None = None
        self.queries = self.responses = self.send_errors = self.tcp_drops = 0
        self.recv_errors = 0
        self.rcodes = [0] * 16          # answers by rcode, for dnsdist's counters

    def _socket(self) -> socket.socket:
        if self.sock is None:
            fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.setblocking(False)
            self.sock.connect((self.host, self.port))
            import asyncio      # serving has it loaded; --check-config never gets here
            try:        # answers counted as they come, as dnsdist's receiving thread does
                asyncio.get_running_loop().add_reader(self.sock, self._drain)
            except RuntimeError:
                pass    # no loop (check-config, tests): counted before the next copy
        return self.sock

    def _drain(self) -> None:
        """Read and count the answers of earlier copies."""
        sock = self.sock
        while sock is not None:
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.recv_errors += 1
                return
            self.responses += 1
            if len(data) >= 12:
                self.rcodes[data[3] & 0x0F] += 1

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        if dq.tcp:
            self.tcp_drops += 1
            return CONTINUE
        query = bytes(dq.data)
        if self.add_ecs:        # the subnet the query would carry to a useClientSubnet server
            query = query_for_backend(query, dq.remote, dq, None)[0]
            if query is None:
                return CONTINUE
        try:
            sock = self._socket()
            self._drain()
            sock.send(query)
            self.queries += 1
        except OSError:
            self.send_errors += 1
        return CONTINUE

    def stats(self) -> dict[str, int]:
        """dnsdist 1.7.3's TeeAction::getStats()."""
        rc = self.rcodes
        return {"queries": self.queries, "responses": self.responses,
                "recv-errors": self.recv_errors, "send-errors": self.send_errors,
                "noerrors": rc[0], "nxdomains": rc[3], "refuseds": rc[5], "servfails": rc[2],
                "other-rcode": self.responses - rc[0] - rc[3] - rc[5] - rc[2],
                "tcp-drops": self.tcp_drops}

    def __str__(self) -> str:
        return f"tee to {format_address(self.host, self.port)}"


class SetMacAddrAction(Action):
    """Adds the client's MAC address (from the kernel's neighbour table, IPv4) as an EDNS option;
    a client without an entry (loopback, routed) gets nothing, as in dnsdist."""

    ARP_TABLE = "/proc/net/arp"

    def __init__(self, code: int) -> None:
        self.code = code
        self.macs: dict[str, bytes] = {}
        self.read_at = -1.0

    def _mac(self, host: str) -> bytes | None:
        import time
        now = time.monotonic()
        if now - self.read_at >= 1.0:         # the table is read at most once a second
            self.read_at = now
            self.macs = read_arp(self.ARP_TABLE)
        return self.macs.get(host)

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        mac = self._mac(dq.remote[0])
        if mac is not None:
            add_edns_option(dq, self.code, mac)
        return CONTINUE

    def __str__(self) -> str:
        return f"add EDNS MAC (code={self.code})"


def read_arp(path: str) -> dict[str, bytes]:
    """IPv4 address -> MAC bytes of the complete entries of /proc/net/arp."""
    out: dict[str, bytes] = {}
    try:
        with open(path) as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) >= 4 and parts[2] != "0x0":
                    try:
                        out[parts[0]] = bytes.fromhex(parts[3].replace(":", ""))
                    except ValueError:
                        continue
    except OSError:
        pass
    return out
