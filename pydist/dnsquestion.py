"""The query as rules see it (dnsdist's DNSQuestion): built only when a rule chain exists."""
from __future__ import annotations

from typing import Any

from pydist.dns.reader import message_end, opt_after_question, options
from pydist.rules.names import DNSName, labels_from_wire
from pydist.transport import Transport, listener_transport

UDP_MAX_SIZE = 4096     # dnsdist 1.7.3's query buffer over UDP (65535 over TCP)


class HeaderFlags:
    """Header flag access over `self.data` (a bytearray that starts with the DNS header), shared
    by the rules' DNSQuestion and the health checks' header (what Lua's DNSHeader wraps)."""

    __slots__ = ()
    data: bytearray

    def get_flag(self, byte: int, mask: int) -> bool:
        return bool(self.data[byte] & mask)

    def set_flag(self, byte: int, mask: int, on: bool) -> None:
        if on:
            self.data[byte] |= mask
        else:
            self.data[byte] &= ~mask & 0xFF

    @property
    def rd(self) -> bool:
        return bool(self.data[2] & 0x01)


class DNSQuestion(HeaderFlags):
    """One query on its way through the rules. `data` is mutable: actions edit the header."""

    __slots__ = ("data", "qname_end", "qtype", "qclass", "remote", "_local", "tcp", "now",
                 "frontend", "tags", "skip_cache", "pool", "_qname", "spoof", "ercode",
                 "temp_failure_ttl", "use_ecs", "ecs_override", "ecs_prefix_length", "delay_ms",
                 "transport", "settings_add_edns", "payload_size", "matched", "ecs_subnet",
                 "lua_handle", "proxy_values", "sni", "unique_id", "http")

    def __init__(self, data: bytes, qname_end: int, qtype: int, qclass: int, remote: Any,
                 frontend: Any = None, tcp: bool = False, now: float = 0.0,
                 transport: Transport | None = None) -> None:
        self.data = bytearray(data)
        self.qname_end = qname_end
        self.qtype = qtype
        self.qclass = qclass
        self.remote = remote              # (host, port[, ...]) as the socket gave it
        self.frontend = frontend          # a ClientState or a FrontendDecl
        self._local: tuple | None = None  # see `local`
        self.tcp = tcp
        self.now = now
        self.tags: dict[str, str] | None = None
        self.skip_cache = False
        self.pool: str | None = None
        self._qname: DNSName | None = None
        self.spoof: Any = None            # what a Spoof verdict answers with
        self.ercode = 0
        self.temp_failure_ttl: int | None = None
        self.use_ecs = True
        self.ecs_override = False
        self.ecs_prefix_length = 0
        self.proxy_values: list[tuple[int, bytes]] | None = None  # proxy protocol TLVs
        self.delay_ms = 0
        self.transport = transport if transport is not None else \
            _transport_of(getattr(frontend, "decl", frontend), tcp)
        self.settings_add_edns = True
        self.payload_size = 1232
        self.matched: list[Any] | None = None   # rules that matched, when the path memoizes
        self.ecs_subnet: tuple[str, int] | None = None   # SetECSAction's (network, bits)
        self.lua_handle: Any = None             # the `dq` a Lua policy saw, made on demand
        self.sni = ""                           # the TLS server name a DoT client sent
        self.unique_id: bytes | None = None     # protobuf message id, made when first logged
        self.http: Any = None                   # a DoH query's DOHRequest (HTTP rules)

    @property
    def local(self) -> tuple:
        """(host, port) the query reached: the listener's, unless the frontend said otherwise
        (a wildcard listener, proxy protocol). Worked out when read: most queries never are."""
        local = self._local
        if local is None:
            decl = getattr(self.frontend, "decl", self.frontend)
            local = self._local = (decl.host, decl.port) if decl is not None \
                else ("0.0.0.0", 0)
        return local

    @local.setter
    def local(self, value: tuple) -> None:
        self._local = value

    @property
    def protocol(self) -> str:
        """dq:getProtocol(): "Do53 UDP", "DNS over TLS"... (pydist.transport)."""
        return self.transport.protocol

    # --- question
    @property
    def qname(self) -> DNSName:
        q = self._qname
        if q is None:
            q = self._qname = DNSName(labels_from_wire(self.data, 12))
        return q

    @property
    def opcode(self) -> int:
        return (self.data[2] >> 3) & 0x0F

    @property
    def rcode(self) -> int:
        return self.data[3] & 0x0F

    @rcode.setter
    def rcode(self, value: int) -> None:
        self.data[3] = (self.data[3] & 0xF0) | (int(value) & 0x0F)

    def count(self, section: int) -> int:
        off = 4 + 2 * section
        return (self.data[off] << 8) | self.data[off + 1]

    # --- header flags (byte 2: QR opcode AA TC RD; byte 3: RA Z AD CD rcode)
    @property
    def cd(self) -> bool:
        return bool(self.data[3] & 0x10)

    @property
    def qr(self) -> bool:
        return bool(self.data[2] & 0x80)

    # --- EDNS
    def opt_offset(self) -> int:
        """Offset of an OPT RR right after the question (plain queries), or -1."""
        return opt_after_question(self.data, self.qname_end)

    def edns_do(self) -> bool:
        off = self.opt_offset()
        return off >= 0 and bool(self.data[off + 7] & 0x80)

    def edns_options(self) -> list[tuple[int, bytes]]:
        off = self.opt_offset()
        if off < 0:
            return []
        d = self.data
        rdlen = (d[off + 9] << 8) | d[off + 10]
        return [(code, bytes(d[s + 4:e]))
                for code, s, e in options(d, off + 11, off + 11 + rdlen, strict=False)]

    # --- bytes after the message (dnsdist forwards them as they came)
    def trailing_data(self) -> bytes:
        return bytes(self.data[message_end(self.data):])

    def set_trailing_data(self, tail: bytes) -> bool:
        """As DNSQuestion::setTrailingData: replaces them, unless the query would outgrow its
        buffer."""
        end = message_end(self.data)
        if end + len(tail) > (65535 if self.tcp else UDP_MAX_SIZE):
            return False
        self.data[end:] = tail
        return True

    # --- tags
    def set_tag(self, key: str, value: str) -> None:
        if self.tags is None:
            self.tags = {}
        self.tags[key] = value

    def get_tag(self, key: str) -> str:
        return (self.tags or {}).get(key, "")

    @property
    def remote_host(self) -> str:
        return self.remote[0]


def _transport_of(decl: Any, tcp: bool) -> Transport:
    """A question made without its transport (tests, responses): the listener's, TCP or UDP."""
    return listener_transport(getattr(decl, "kind", "plain") if decl is not None else "plain",
                              not tcp)
