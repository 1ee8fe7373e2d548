"""The one transport enumeration: how a query reached pydist, carried from the frontend that
received it to every consumer (the query step, `dq.protocol`, rings, protobuf, dnstap, stats).

Values are dnsdist 1.7.3's `dnsdist::Protocol` numbers, so a ring entry or an in-flight state
holds the enum itself and each consumer asks it for its own spelling.
"""
from __future__ import annotations

from enum import IntEnum


class Transport(IntEnum):
    DO53_UDP = 0
    DO53_TCP = 1
    DNSCRYPT_UDP = 2
    DNSCRYPT_TCP = 3
    DOT = 4
    DOH = 5

    @property
    def protocol(self) -> str:
        """dq:getProtocol() / DNSQuestion.protocol (dnsdist's toPrettyString)."""
        return _PRETTY[self]

    @property
    def ring_name(self) -> str:
        """The Protocol column of grepq/getRespRing (dnsdist's toString)."""
        return _RING[self]

    @property
    def protobuf_code(self) -> int:
        """PBDNSMessage.SocketProtocol and dnstap's SocketProtocol (the same numbers)."""
        return _WIRE_CODE[self]

    @property
    def is_udp(self) -> bool:
        """The query came as a datagram: UDP answer limits, TC, UDP delays apply."""
        return self in DATAGRAM


_PRETTY = {Transport.DO53_UDP: "Do53 UDP", Transport.DO53_TCP: "Do53 TCP",
           Transport.DNSCRYPT_UDP: "DNSCrypt UDP", Transport.DNSCRYPT_TCP: "DNSCrypt TCP",
           Transport.DOT: "DNS over TLS", Transport.DOH: "DNS over HTTPS"}
_RING = {Transport.DO53_UDP: "DoUDP", Transport.DO53_TCP: "DoTCP",
         Transport.DNSCRYPT_UDP: "DNSCryptUDP", Transport.DNSCRYPT_TCP: "DNSCryptTCP",
         Transport.DOT: "DoT", Transport.DOH: "DoH"}
_WIRE_CODE = {Transport.DO53_UDP: 1, Transport.DO53_TCP: 2, Transport.DOT: 3, Transport.DOH: 4,
              Transport.DNSCRYPT_UDP: 5, Transport.DNSCRYPT_TCP: 6}


def listener_transport(kind: str, udp: bool) -> Transport:
    """The transport of one listening socket of a declared frontend (FrontendDecl.kind)."""
    if kind == "tls":
        return Transport.DOT
    if kind == "doh":
        return Transport.DOH
    if kind == "dnscrypt":
        return Transport.DNSCRYPT_UDP if udp else Transport.DNSCRYPT_TCP
    return Transport.DO53_UDP if udp else Transport.DO53_TCP


# what dnsdist 1.7.3 treats as UDP in processQuery: the UDP cache key, DelayAction, no zone
# transfers, and the backend reached over UDP (DoH queries go to the backend over UDP)
UDP_PATH = frozenset((Transport.DO53_UDP, Transport.DNSCRYPT_UDP, Transport.DOH))

# the query came as a datagram (UDP answer limits, TC); the hot paths test membership here
DATAGRAM = frozenset((Transport.DO53_UDP, Transport.DNSCRYPT_UDP))
DNSCRYPT = frozenset((Transport.DNSCRYPT_UDP, Transport.DNSCRYPT_TCP))
# plain names for the hot paths: `Transport.DOH` costs ~100 ns (the enum's metaclass), these 9
DO53_UDP, DO53_TCP, DOT, DOH = Transport.DO53_UDP, Transport.DO53_TCP, Transport.DOT, Transport.DOH
