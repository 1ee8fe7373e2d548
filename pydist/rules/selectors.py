"""dnsdist's selectors (dnsdist-rules.hh): one class each, matches(dq) and dnsdist's toString."""
from __future__ import annotations

import ipaddress
import random
import re
import time
from typing import Any, Callable

from pydist.dns.ttl import message_end
from pydist.dns.wire import qtype_to_text
from pydist.qps import QPSLimiter
from pydist.rules.names import DNSName, DNSNameSet, SuffixMatchNode

RCODE_TEXT = {
    0: "No Error", 1: "Form Error", 2: "Server Failure", 3: "Non-Existent domain",
    4: "Not Implemented", 5: "Query Refused", 6: "Name Exists when it should not",
    7: "RR Set Exists when it should not", 8: "RR Set that should exist does not",
    9: "Server Not Authoritative for zone / Not Authorized", 10: "Name not contained in zone",
    16: "Bad OPT Version / TSIG Signature Failure", 17: "Key not recognized",
    18: "Signature out of time window", 19: "Bad TKEY Mode", 20: "Duplicate key name",
    21: "Algorithm not supported", 22: "Bad Truncation", 23: "Bad/missing Server Cookie",
}
SECTIONS = ("QD", "AN", "NS", "AR")


class RuleFailed(Exception):
    """A selector that cannot be evaluated (dnsdist throws): the query is dropped."""


def rcode_text(rc: int) -> str:
    return RCODE_TEXT.get(rc, f"Err#{rc}")


class Selector:
    """Base: `pure` is True when the verdict depends on the query bytes only (fast-path safe)."""
    pure = False

    def matches(self, dq: Any) -> bool:
        return False

    def __str__(self) -> str:
        return type(self).__name__


class AllRule(Selector):
    pure = True

    def matches(self, dq: Any) -> bool:
        return True

    def __str__(self) -> str:
        return "All"


class QNameRule(Selector):
    pure = True

    def __init__(self, name: DNSName) -> None:
        self.name = name

    def matches(self, dq: Any) -> bool:
        return dq.qname.key == self.name.key

    def __str__(self) -> str:
        return f"qname=={self.name}"


class QNameSetRule(Selector):
    pure = True

    def __init__(self, names: DNSNameSet) -> None:
        self.names = names

    def matches(self, dq: Any) -> bool:
        return dq.qname.key in self.names

    def __str__(self) -> str:
        return f"qname in DNSNameSet({len(self.names)} FQDNs)"


class SuffixMatchNodeRule(Selector):
    pure = True

    def __init__(self, smn: SuffixMatchNode, quiet: bool = False) -> None:
        self.smn, self.quiet = smn, quiet

    def matches(self, dq: Any) -> bool:
        return self.smn.check_key(dq.qname.key)

    def __str__(self) -> str:
        return "qname==in-set" if self.quiet else f"qname in {self.smn}"


POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "xdigit": "0-9A-Fa-f",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "cntrl": "\\x00-\\x1f\\x7f",
    "print": "\\x20-\\x7e", "graph": "\\x21-\\x7e",
}


def posix_to_python(pattern: str) -> str:
    """A POSIX extended regex (glibc's regcomp, as dnsdist's RegexRule) in Python's syntax:
    [:class:] names inside brackets, backslashes literal inside brackets, and \\d / \\D
    (which glibc does not know: such a rule never matches in dnsdist 1.7.3, checked)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append("(?!)" if nxt in "dD" else c + nxt)
            i += 2
        elif c == "[":
            j = i + 1
            body = []
            if j < n and pattern[j] == "^":
                body.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                body.append("\\]")
                j += 1
            while j < n and pattern[j] != "]":
                m = re.match(r"\[:([a-z]+):\]", pattern[j:])
                if m and m.group(1) in POSIX_CLASSES:
                    body.append(POSIX_CLASSES[m.group(1)])
                    j += m.end()
                    continue
                ch = pattern[j]
                body.append("\\" + ch if ch in "\\[" else ch)
                j += 1
            if j >= n:
                raise re.error("unterminated bracket expression", pattern, i)
            out.append("[" + "".join(body) + "]")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class RegexRule(Selector):
    pure = True
    label = "Regex: "

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex = re.compile(posix_to_python(pattern), re.IGNORECASE)

    def matches(self, dq: Any) -> bool:
        text = str(dq.qname)
        return self.regex.search(text[:-1] if text != "." else text) is not None

    def __str__(self) -> str:
        return self.label + self.pattern


class RE2Rule(RegexRule):
    label = "RE2 match: "

    def __init__(self, pattern: str) -> None:     # RE2 syntax is close to Python's
        self.pattern = pattern
        self.regex = re.compile(pattern, re.IGNORECASE)

    @classmethod
    def never(cls, pattern: str) -> "RE2Rule":
        """The rule an RE2 pattern that did not compile gives: it never matches."""
        rule = cls("(?!)")
        rule.pattern = pattern
        return rule

    def matches(self, dq: Any) -> bool:
        text = str(dq.qname)
        return self.regex.fullmatch(text[:-1] if text != "." else text) is not None


class QTypeRule(Selector):
    pure = True

    def __init__(self, qtype: int) -> None:
        self.qtype = qtype

    def matches(self, dq: Any) -> bool:
        return dq.qtype == self.qtype

    def __str__(self) -> str:
        return f"qtype=={qtype_to_text(self.qtype)}"


class QClassRule(Selector):
    pure = True

    def __init__(self, qclass: int) -> None:
        self.qclass = qclass

    def matches(self, dq: Any) -> bool:
        return dq.qclass == self.qclass

    def __str__(self) -> str:
        return f"qclass=={self.qclass}"


class OpcodeRule(Selector):
    pure = True

    def __init__(self, opcode: int) -> None:
        self.opcode = opcode

    def matches(self, dq: Any) -> bool:
        return dq.opcode == self.opcode

    def __str__(self) -> str:
        return f"opcode=={self.opcode}"


class RDRule(Selector):
    pure = True

    def matches(self, dq: Any) -> bool:
        return dq.rd

    def __str__(self) -> str:
        return "rd==1"


class DNSSECRule(Selector):
    pure = True

    def matches(self, dq: Any) -> bool:
        return dq.cd or dq.edns_do()

    def __str__(self) -> str:
        return "DNSSEC"


class TCPRule(Selector):
    def __init__(self, tcp: bool) -> None:
        self.tcp = tcp

    def matches(self, dq: Any) -> bool:
        return dq.tcp == self.tcp

    def __str__(self) -> str:
        return "TCP" if self.tcp else "UDP"


class NetmaskGroupRule(Selector):
    def __init__(self, nmg: Any, src: bool = True, quiet: bool = False) -> None:
        self.nmg, self.src, self.quiet = nmg, src, quiet

    def matches(self, dq: Any) -> bool:
        return self.nmg.match((dq.remote if self.src else dq.local)[0])

    def __str__(self) -> str:
        head = "Src: " if self.src else "Dst: "
        return head + ("in-group" if self.quiet else ", ".join(self.nmg.to_strings()))


class DSTPortRule(Selector):
    def __init__(self, port: int) -> None:
        self.port = port

    def matches(self, dq: Any) -> bool:
        return dq.local[1] == self.port

    def __str__(self) -> str:
        return f"dst port=={self.port}"


class AndRule(Selector):
    def __init__(self, rules: list[Selector]) -> None:
        self.rules = tuple(rules)
        self.pure = all(r.pure for r in self.rules)

    def matches(self, dq: Any) -> bool:
        return all(r.matches(dq) for r in self.rules)

    def __str__(self) -> str:
        return " && ".join(f"({r})" for r in self.rules)


class OrRule(AndRule):
    def matches(self, dq: Any) -> bool:
        return any(r.matches(dq) for r in self.rules)

    def __str__(self) -> str:
        return " || ".join(f"({r})" for r in self.rules)


class NotRule(Selector):
    def __init__(self, rule: Selector) -> None:
        self.rule = rule
        self.pure = rule.pure

    def matches(self, dq: Any) -> bool:
        return not self.rule.matches(dq)

    def __str__(self) -> str:
        return f"!({self.rule})"


def _truncate(host: str, v4: int, v6: int) -> str:
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    bits = v4 if ip.version == 4 else v6
    if bits >= ip.max_prefixlen:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False).network_address)


class MaxQPSIPRule(Selector):
    """Matches when the client's (truncated) address exceeds qps."""

    MAX_ENTRIES = 1_000_000     # a flood of spoofed sources cannot grow it without bound

    def __init__(self, qps: int, v4: int = 32, v6: int = 64, burst: int | None = None,
                 expiration: int = 300, cleanup_delay: int = 60, scan_fraction: int = 10) -> None:
        self.qps, self.v4, self.v6 = qps, v4, v6
        self.burst = burst if burst else qps
        self.expiration, self.cleanup_delay = expiration, cleanup_delay
        self.limiters: dict[str, QPSLimiter] = {}
        self.next_cleanup = time.monotonic() + cleanup_delay

    def matches(self, dq: Any) -> bool:
        key = _truncate(dq.remote[0], self.v4, self.v6)
        lim = self.limiters.get(key)
        if lim is None:
            if len(self.limiters) >= self.MAX_ENTRIES:
                self.limiters.clear()
            lim = self.limiters[key] = QPSLimiter(self.qps, self.burst)
            self.cleanup(lim.last)
        return not lim.check()

    def cleanup(self, now: float) -> None:
        """Every cleanupDelay seconds, forget clients not seen for `expiration` seconds."""
        if now < self.next_cleanup:
            return
        self.next_cleanup = now + self.cleanup_delay
        cutoff = now - self.expiration
        self.limiters = {k: v for k, v in self.limiters.items() if v.last >= cutoff}

    def __str__(self) -> str:
        return f"IP (/{self.v4}, /{self.v6}) match for QPS over {self.qps} burst {self.burst}"


class MaxQPSRule(Selector):
    """Matches while under the rate (a token is taken)."""

    def __init__(self, qps: int, burst: int | None = None) -> None:
        self.qps = qps
        self.limiter = QPSLimiter(qps, burst or qps)

    def matches(self, dq: Any) -> bool:
        return self.limiter.check()

    def __str__(self) -> str:
        return f"Max {self.qps} qps"


class QNameLabelsCountRule(Selector):
    pure = True

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def matches(self, dq: Any) -> bool:
        n = dq.qname.count_labels()
        return n < self.lo or n > self.hi

    def __str__(self) -> str:
        return f"labels count < {self.lo} || labels count > {self.hi}"


class QNameWireLengthRule(QNameLabelsCountRule):
    def matches(self, dq: Any) -> bool:
        n = dq.qname.wire_length()
        return n < self.lo or n > self.hi

    def __str__(self) -> str:
        return f"wire length < {self.lo} || wire length > {self.hi}"


class RecordsCountRule(Selector):
    pure = True

    def __init__(self, section: int, lo: int, hi: int) -> None:
        self.section, self.lo, self.hi = section, lo, hi

    def matches(self, dq: Any) -> bool:
        return self.lo <= dq.count(self.section) <= self.hi

    def __str__(self) -> str:
        return f"{self.lo} <= records in {SECTIONS[self.section & 3]} <= {self.hi}"


class RecordsTypeCountRule(Selector):
    pure = True

    def __init__(self, section: int, qtype: int, lo: int, hi: int) -> None:
        self.section, self.qtype, self.lo, self.hi = section, qtype, lo, hi

    def matches(self, dq: Any) -> bool:
        if self.section == 0:
            n = 1 if dq.qtype == self.qtype and dq.count(0) else 0
        else:
            try:
                import dnslib
                rec = dnslib.DNSRecord.parse(bytes(dq.data))
            except Exception:
                return False
            rrs = (rec.rr, rec.auth, rec.ar)[self.section - 1]
            n = sum(1 for r in rrs if r.rtype == self.qtype)
        return self.lo <= n <= self.hi

    def __str__(self) -> str:
        return (f"{self.lo} <= {qtype_to_text(self.qtype)} records in "
                f"{SECTIONS[self.section & 3]} <= {self.hi}")


class ProbaRule(Selector):
    def __init__(self, proba: float) -> None:
        self.proba = proba

    def matches(self, dq: Any) -> bool:
        return random.random() < self.proba

    def __str__(self) -> str:
        return f"match with prob. {self.proba:.2f}"


class LuaRule(Selector):
    """f(dq) -> bool, given as a Python callable by the Lua bindings (errors: no match)."""
    text = "Lua script"

    def __init__(self, func: Callable[[Any], bool],
                 text: str | None = None) -> None:
        self.func = func
        if text is not None:     # the FFI variants: "Lua FFI script", ...
            self.text = text

    def matches(self, dq: Any) -> bool:
        return bool(self.func(dq))

    def __str__(self) -> str:
        return self.text


class PoolAvailableRule(Selector):
    def __init__(self, registry: Any, pool: str) -> None:
        self.reg, self.pool = registry, pool

    def matches(self, dq: Any) -> bool:
        p = self.reg.pools.get(self.pool)
        if p is None:      # dnsdist's getPool() throws: the query is dropped
            raise RuleFailed(f"no pool named '{self.pool}'")
        return any(s.is_up() for s in p.servers)

    def __str__(self) -> str:
        return f"pool '{self.pool}' is available"


class PoolOutstandingRule(Selector):
    def __init__(self, registry: Any, pool: str, limit: int) -> None:
        self.reg, self.pool, self.limit = registry, pool, limit

    def matches(self, dq: Any) -> bool:
        p = self.reg.pools.get(self.pool)
        if p is None:
            raise RuleFailed(f"no pool named '{self.pool}'")
        return sum(s.outstanding for s in p.servers) > self.limit

    def __str__(self) -> str:
        return f"pool '{self.pool}' outstanding > {self.limit}"


class TagRule(Selector):
    def __init__(self, tag: str, value: str | None = None) -> None:
        self.tag, self.value = tag, value

    def matches(self, dq: Any) -> bool:
        tags = dq.tags
        if not tags or self.tag not in tags:
            return False
        return self.value is None or tags[self.tag] == self.value

    def __str__(self) -> str:
        if self.value is None:
            return f"tag '{self.tag}' is set"
        return f"tag '{self.tag}' is set to '{self.value}'"


class RCodeRule(Selector):
    pure = True

    def __init__(self, rcode: int) -> None:
        self.rcode = rcode

    def matches(self, dq: Any) -> bool:
        return dq.rcode == self.rcode

    def __str__(self) -> str:
        return f"rcode=={rcode_text(self.rcode)}"


class ERCodeRule(RCodeRule):
    def matches(self, dq: Any) -> bool:
        ext = 0
        off = dq.opt_offset()
        if off >= 0:
            ext = dq.data[off + 5]
        return ((ext << 4) | dq.rcode) == self.rcode

    def __str__(self) -> str:
        return f"ercode=={rcode_text(self.rcode)}"


class EDNSVersionRule(Selector):
    pure = True

    def __init__(self, version: int) -> None:
        self.version = version

    def matches(self, dq: Any) -> bool:
        off = dq.opt_offset()
        return off >= 0 and dq.data[off + 6] > self.version

    def __str__(self) -> str:
        return f"ednsversion>{self.version}"


class EDNSOptionRule(Selector):
    pure = True

    def __init__(self, code: int) -> None:
        self.code = code

    def matches(self, dq: Any) -> bool:
        return any(c == self.code for c, _ in dq.edns_options())

    def __str__(self) -> str:
        return f"ednsoptcode=={self.code}"


class TrailingDataRule(Selector):
    pure = True

    def matches(self, dq: Any) -> bool:
        return message_end(dq.data) < len(dq.data)

    def __str__(self) -> str:
        return "trailing data"


class TimedIPSetRule(Selector):
    """Client addresses with an expiry (TimedIPSetRule(); Lua adds them, e.g. from a LuaAction
    that spots abuse): matches while the client's entry is still valid."""

    def __init__(self) -> None:
        self.until: dict[bytes, float] = {}       # packed address -> epoch seconds

    def add(self, host: str, seconds: float) -> None:
        self.until[_packed(host)] = time.time() + seconds

    def clear(self) -> None:
        self.until.clear()

    def cleanup(self) -> None:
        """Forget expired entries (they already stopped matching)."""
        now = time.time()
        self.until = {k: v for k, v in self.until.items() if v >= now}

    def matches(self, dq: Any) -> bool:
        ttd = self.until.get(_packed(dq.remote[0]))
        return ttd is not None and time.time() < ttd

    def __str__(self) -> str:
        now = time.time()
        return f"Src: {sum(1 for v in self.until.values() if now < v)} ips"


def _packed(host: str) -> bytes:
    return ipaddress.ip_address(host.split("%", 1)[0]).packed


class ProxyProtocolValueRule(Selector):
    """A TLV of the incoming proxy protocol header (setProxyProtocolACL clients), by type and
    optionally by exact value."""

    def __init__(self, kind: int, value: bytes | None = None) -> None:
        self.kind, self.value = kind, value

    def matches(self, dq: Any) -> bool:
        for kind, value in dq.proxy_values or ():
            if kind == self.kind and (self.value is None or value == self.value):
                return True
        return False

    def __str__(self) -> str:
        verb = "is present" if self.value is None else "matches"
        return f"proxy protocol value of type {self.kind} {verb}"


class SNIRule(Selector):
    """The TLS server name of a DoT query, compared as dnsdist does (exact bytes)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def matches(self, dq: Any) -> bool:
        return dq.sni == self.name

    def __str__(self) -> str:
        return f"SNI == {self.name}"


class NeverRule(Selector):
    """Selectors on transports or stores pydist does not have yet: they never match."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text
