"""Addresses and netmasks as dnsdist spells them (ComboAddress, Netmask, NetmaskGroup)."""
from __future__ import annotations

import ipaddress
import socket
from typing import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressError(ValueError):
    """An address dnsdist would refuse with "Unable to convert presentation address"."""


def parse_address(text: str, default_port: int = 53) -> tuple[str, int]:
    """Parse 'ip', 'ip:port', '[v6]:port' or bare v6 into (ip, port), as ComboAddress does."""
    s = text.strip()
    host, port = s, default_port
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise AddressError(f"Unable to convert presentation address '{text}'")
        host, rest = s[1:end], s[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise AddressError(f"Unable to convert presentation address '{text}'")
            port = int(rest[1:])
    elif s.count(":") == 1:
        host, p = s.split(":")
        if not p.isdigit():
            raise AddressError(f"Unable to convert presentation address '{text}'")
        port = int(p)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise AddressError(f"Unable to convert presentation address '{text}'") from None
    if not 0 <= port <= 65535:
        raise AddressError(f"Unable to convert presentation address '{text}'")
    return str(ip), port


def format_address(host: str, port: int) -> str:
    """ip:port, with brackets for IPv6, as ComboAddress::toStringWithPort."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def family_of(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def parse_netmask(text: str) -> IPNetwork:
    """A netmask or bare address (/32, /128); raises with dnsdist's message."""
    s = text.strip()
    if s.startswith("[") and "]" in s:     # "[::1]/128": ComboAddress takes brackets
        host, rest = s[1:].split("]", 1)
        s = host + rest
    try:
        return ipaddress.ip_network(s, strict=False)
    except ValueError:
        raise AddressError(f"Unable to convert '{text}' to a netmask") from None


def _sort_key(net: IPNetwork) -> tuple:
    """dnsdist lists a NetmaskGroup in its trie's in-order: a netmask after the narrower ones
    whose next bit is 0 and before those whose next bit is 1 (10.1.0.0/16 before 10.0.0.0/8,
    0.0.0.0/0 between 127.0.0.0/8 and 169.254.0.0/16), IPv4 first."""
    bits = format(int(net.network_address), f"0{net.max_prefixlen}b")[:net.prefixlen]
    return (net.version, bits.replace("1", "2") + "1")


class NetmaskGroup:
    """A set of netmasks with a per-address verdict memo, so a hot-path check is a dict lookup."""

    __slots__ = ("_nets", "_negated", "_memo")

    def __init__(self, masks: Iterable[str] = ()) -> None:
        self._nets: list[IPNetwork] = []
        self._negated: set[IPNetwork] = set()   # "!mask" entries: excluded, as in dnsdist
        self._memo: dict[str, bool] = {}
        for m in masks:
            self.add(m)

    def add(self, mask: str | IPNetwork) -> None:
        """A mask, or with a leading "!" an exception to the wider masks (dnsdist's tree keeps
        one polarity per mask: the last one added)."""
        negated = isinstance(mask, str) and mask.startswith("!")
        net = mask if not isinstance(mask, str) else parse_netmask(mask[1:] if negated else mask)
        if net not in self._nets:
            self._nets.append(net)
        if negated:
            self._negated.add(net)
        else:
            self._negated.discard(net)
        self._memo.clear()

    def remove(self, mask: str) -> None:
        net = parse_netmask(mask[1:] if mask.startswith("!") else mask)
        self._nets = [n for n in self._nets if n != net]
        self._negated.discard(net)
        self._memo.clear()

    def clear(self) -> None:
        self._nets.clear()
        self._negated.clear()
        self._memo.clear()

    def match(self, host: str) -> bool:
        """True if host (an IP string, maybe with %scope) is inside one of the masks."""
        v = self._memo.get(host)
        if v is None:
            v = self._match_slow(host)
            if len(self._memo) > 65536:
                self._memo.clear()
            self._memo[host] = v
        return v

    def _match_slow(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None and self._verdict(ip.ipv4_mapped):
            return True
        return self._verdict(ip)

    def _verdict(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """The most specific mask holding ip decides (a "!" one excludes)."""
        if not self._negated:
            return any(ip in n for n in self._nets if n.version == ip.version)
        best = max((n for n in self._nets if n.version == ip.version and ip in n),
                   key=lambda n: n.prefixlen, default=None)
        return best is not None and best not in self._negated

    @property
    def memo(self) -> dict[str, bool]:
        """The verdict memo, read directly by the UDP drain loop."""
        return self._memo

    def size(self) -> int:
        return len(self._nets)

    def to_strings(self) -> list[str]:
        """Masks sorted the way dnsdist's NetmaskGroup prints them (IPv4 first)."""
        return [("!" if n in self._negated else "") + str(n)
                for n in sorted(self._nets, key=_sort_key)]

    def __str__(self) -> str:
        return ", ".join(self.to_strings())
