"""Value objects Lua builds (newNMG, newSuffixMatchNode, newDNSName, newCA, newNetmask,
newDNSNameSet, newQPSLimiter) and the handles that give them dnsdist's method names."""
from __future__ import annotations

import ipaddress
from typing import Any

from luaapi.convert import as_bool, as_int, as_str, fail, is_table, table_to_list
from luaapi.errors import DnsdistError, PdnsError
from pydist.dns.netmask import AddressError, NetmaskGroup, format_address, parse_address, \
    parse_netmask
from pydist.qps import QPSLimiter
from pydist.rules.names import DNSName, DNSNameSet, NameError_, SuffixMatchNode

DNSNAME_CPP = "DNSName"


def to_dnsname(v: Any, target: str = "DNSName") -> DNSName:
    if isinstance(v, DNSNameHandle):
        return v.name
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        try:
            return DNSName.from_text(as_str(v))
        except NameError_ as e:
            raise DnsdistError(str(e)) from None
    raise fail(v, target)


class DNSNameHandle:
    """newDNSName(): exactly the methods 1.7.3 has (no toStringNoDot, makeRelative, ...)."""

    def __init__(self, name: DNSName) -> None:
        self.name = name

    def toString(self, *a: Any) -> str:
        return str(self.name)

    tostring = toString

    def toDNSString(self, *a: Any) -> str:
        return self.name.to_wire().decode("latin-1")

    def isPartOf(self, other: Any, *a: Any) -> bool:
        return self.name.is_part_of(to_dnsname(other))

    def countLabels(self, *a: Any) -> int:
        return self.name.count_labels()

    def wirelength(self, *a: Any) -> int:
        return self.name.wire_length()

    def chopOff(self, *a: Any) -> bool:
        if not self.name.labels:
            return False
        self.name = DNSName(self.name.labels[1:])
        return True

    def hash(self, *a: Any) -> int:
        from pydist.dns.burtle import burtle
        return burtle(self.name.to_wire().lower(), 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DNSNameHandle) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return str(self.name)


class ComboAddressHandle:
    def __init__(self, host: str, port: int = 0) -> None:
        self.host, self.port = host, port

    @classmethod
    def parse(cls, text: str) -> "ComboAddressHandle":
        try:
            host, port = parse_address(text, 0)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        return cls(host, port)

    def toString(self, *a: Any) -> str:
        return self.host

    tostring = toString

    def toStringWithPort(self, *a: Any) -> str:
        return format_address(self.host, self.port)

    tostringWithPort = toStringWithPort

    def getPort(self, *a: Any) -> int:
        return self.port

    def isIPv4(self, *a: Any) -> bool:
        return ":" not in self.host

    def isIPv6(self, *a: Any) -> bool:
        return ":" in self.host

    def isMappedIPv4(self, *a: Any) -> bool:
        ip = ipaddress.ip_address(self.host)
        return ip.version == 6 and ip.ipv4_mapped is not None

    def mapToIPv4(self, *a: Any) -> "ComboAddressHandle":
        ip = ipaddress.ip_address(self.host)
        if ip.version == 6 and ip.ipv4_mapped is not None:
            return ComboAddressHandle(str(ip.ipv4_mapped), self.port)
        return self

    def truncate(self, bits: Any, *a: Any) -> None:
        net = ipaddress.ip_network(f"{self.host}/{as_int(bits)}", strict=False)
        self.host = str(net.network_address)

    def isUnspec(self, *a: Any) -> bool:
        return self.host in ("0.0.0.0", "::")

    def toRaw(self, *a: Any) -> str:
        return ipaddress.ip_address(self.host).packed.decode("latin-1")

    def ipencrypt(self, key: Any, *a: Any) -> "ComboAddressHandle":
        from pydist import ipcipher      # cryptography loads only when asked for
        return self._ipcipher(key, ipcipher.encrypt_host)

    def ipdecrypt(self, key: Any, *a: Any) -> "ComboAddressHandle":
        from pydist import ipcipher
        return self._ipcipher(key, ipcipher.decrypt_host)

    def _ipcipher(self, key: Any, f: Any) -> "ComboAddressHandle":
        """ipcipher (pydist/ipcipher.py); the port is kept."""
        try:
            return ComboAddressHandle(f(self.host, as_str(key).encode("latin-1")), self.port)
        except ValueError as e:
            raise DnsdistError(str(e)) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComboAddressHandle) and (self.host, self.port) == (other.host, other.port)

    def __hash__(self) -> int:
        return hash((self.host, self.port))

    def __str__(self) -> str:
        return self.host


def _mask_text(v: Any) -> str:
    if isinstance(v, NetmaskHandle):
        return str(v.net)
    if isinstance(v, ComboAddressHandle):
        return v.host
    text = as_str(v, "Netmask")
    if text.startswith("[") and "]" in text:
        host, rest = text[1:].split("]", 1)
        text = host + rest
    try:
        parse_netmask(text)
    except AddressError as e:
        raise PdnsError(str(e)) from None
    return text


class NMGHandle:
    """newNMG(): a NetmaskGroup with dnsdist's method names."""

    def __init__(self) -> None:
        self.nmg = NetmaskGroup()

    def addMask(self, mask: Any, *a: Any) -> None:
        self.nmg.add(_mask_text(mask))

    def addMasks(self, masks: Any, *a: Any) -> None:
        if is_table(masks):
            for k, v in masks.items():
                self.nmg.add(_mask_text(k if isinstance(k, str) else v))

    def addNMG(self, other: Any, *a: Any) -> None:
        if isinstance(other, NMGHandle):
            for m in other.nmg.to_strings():
                self.nmg.add(m)

    def match(self, addr: Any, *a: Any) -> bool:
        host = addr.host if isinstance(addr, ComboAddressHandle) else as_str(addr).split("]")[0].lstrip("[")
        return self.nmg.match(host)

    def size(self, *a: Any) -> int:
        return self.nmg.size()

    def clear(self, *a: Any) -> None:
        self.nmg.clear()

    def toString(self, *a: Any) -> str:
        return ", ".join(self.nmg.to_strings())

    tostring = toString

    def __str__(self) -> str:
        return self.toString()


class NetmaskHandle:
    def __init__(self, text: str) -> None:
        self.net = parse_netmask(text)

    def toString(self, *a: Any) -> str:
        return str(self.net)

    tostring = toString

    def getBits(self, *a: Any) -> int:
        return self.net.prefixlen

    def getNetwork(self, *a: Any) -> ComboAddressHandle:
        return ComboAddressHandle(str(self.net.network_address))

    getMaskedNetwork = getNetwork

    def isIPv4(self, *a: Any) -> bool:
        return self.net.version == 4

    def isIPv6(self, *a: Any) -> bool:
        return self.net.version == 6

    def match(self, addr: Any, *a: Any) -> bool:
        host = addr.host if isinstance(addr, ComboAddressHandle) else as_str(addr)
        try:
            return ipaddress.ip_address(host) in self.net
        except ValueError:
            return False

    def empty(self, *a: Any) -> bool:
        return False

    def __str__(self) -> str:
        return str(self.net)


def _names(v: Any) -> list[DNSName]:
    if is_table(v):
        return [to_dnsname(x) for x in table_to_list(v)]
    return [to_dnsname(v)]


class SMNHandle:
    """newSuffixMatchNode(): add(name | string | {names}), check(name), remove(...)."""

    def __init__(self) -> None:
        self.smn = SuffixMatchNode()

    def add(self, v: Any, *a: Any) -> None:
        for n in _names(v):
            self.smn.add(n)

    def remove(self, v: Any, *a: Any) -> None:
        for n in _names(v):
            self.smn.remove(n)

    def check(self, v: Any, *a: Any) -> bool:
        return self.smn.check(to_dnsname(v))

    def getBestMatch(self, v: Any, *a: Any) -> Any:
        name = to_dnsname(v)
        key = name.key
        for i in range(len(key) + 1):
            n = self.smn.names.get(key[i:])
            if n is not None:
                return DNSNameHandle(n)
        return None


class DNSNameSetHandle:
    def __init__(self) -> None:
        self.set = DNSNameSet()

    def add(self, v: Any, *a: Any) -> None:
        for n in _names(v):
            self.set.add(n)

    def check(self, v: Any, *a: Any) -> bool:
        return to_dnsname(v).key in self.set

    def size(self, *a: Any) -> int:
        return len(self.set)

    def empty(self, *a: Any) -> bool:
        return len(self.set) == 0

    def clear(self, *a: Any) -> None:
        self.set.names.clear()

    def toString(self, *a: Any) -> str:
        return ", ".join(str(n) for n in self.set.names.values())

    tostring = toString


class QPSLimiterHandle:
    def __init__(self, rate: int, burst: int) -> None:
        self.limiter = QPSLimiter(rate, burst)

    def check(self, *a: Any) -> bool:
        return self.limiter.check()


def register(rt: Any) -> None:
    rt.fn("newDNSName", lambda name, *a: DNSNameHandle(to_dnsname(name, "std::string")))
    rt.fn("newDNSNameFromRaw", lambda raw, *a: DNSNameHandle(_from_raw(as_str(raw))))
    rt.fn("newSuffixMatchNode", lambda *a: SMNHandle())
    rt.fn("newDNSNameSet", lambda *a: DNSNameSetHandle())
    rt.fn("newNMG", lambda *a: NMGHandle())

    def new_ca(addr: Any, *a: Any) -> ComboAddressHandle:
        return ComboAddressHandle.parse(as_str(addr))
    rt.fn("newCA", new_ca)

    def new_ca_raw(raw: Any, port: Any = 0, *a: Any) -> ComboAddressHandle:
        b = as_str(raw).encode("latin-1")
        if len(b) not in (4, 16):
            raise PdnsError("invalid raw address length")
        return ComboAddressHandle(str(ipaddress.ip_address(b)), as_int(port))
    rt.fn("newCAFromRaw", new_ca_raw)

    def new_netmask(s: Any, bits: Any = None, *a: Any) -> NetmaskHandle:
        text = s.host if isinstance(s, ComboAddressHandle) else as_str(s)
        if bits is not None:
            text = f"{text}/{as_int(bits)}"
        try:
            return NetmaskHandle(_mask_text(text))
        except AddressError as e:
            raise PdnsError(str(e)) from None
    rt.fn("newNetmask", new_netmask)
    rt.fn("newQPSLimiter", lambda rate, burst, *a: QPSLimiterHandle(as_int(rate), as_int(burst)))
    _ = as_bool


def _from_raw(raw: str) -> DNSName:
    b = raw.encode("latin-1")
    labels, off = [], 0
    while off < len(b) and b[off]:
        labels.append(b[off + 1:off + 1 + b[off]])
        off += b[off] + 1
    return DNSName(labels)
