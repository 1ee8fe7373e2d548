"""dnsdist's actions (dnsdist-lua-actions.cc): one class each, __call__(dq) -> (verdict, text)."""
from __future__ import annotations

import ipaddress
import random
from typing import Any, Callable

from pydist.dns.synth import opt_rr
from pydist.qps import QPSLimiter
from pydist.rules.selectors import rcode_text

# DNSAction (query chains)
DROP, NXDOMAIN, REFUSED, SPOOF, ALLOW, HEADER_MODIFY, POOL, DELAY, TRUNCATE, SERVFAIL, \
    NONE, NOOP, NORECURSE, SPOOF_RAW = range(14)
# DNSResponseAction (response chains)
R_ALLOW, R_DELAY, R_DROP, R_HEADER_MODIFY, R_SERVFAIL, R_NONE = range(6)

CONTINUE = (NONE, None)


class ResponseConfig:
    """The {aa=, ad=, ra=, ttl=} option table of the answer-making actions."""

    def __init__(self, aa: bool | None = None, ad: bool | None = None, ra: bool | None = None,
                 ttl: int = 60) -> None:
        self.aa, self.ad, self.ra, self.ttl = aa, ad, ra, ttl

    def apply(self, dq: Any) -> None:
        """As setResponseHeadersFromConfig: AA if given, AD cleared unless given, RA=RD unless
        given."""
        if self.aa is not None:
            dq.set_flag(2, 0x04, self.aa)
        dq.set_flag(3, 0x20, bool(self.ad))
        dq.set_flag(3, 0x80, dq.rd if self.ra is None else self.ra)


class Action:
    """Base: `response` is True for actions that belong in response chains; `pure` for actions
    that leave the query, its routing and everything else untouched (fast-path safe)."""
    response = False
    pure = False
    carried_out = True
    text = ""
    # the attributes (ints, or lists of ints) an action counts into while serving: with
    # worker processes they are summed into the supervisor's copy (pydist.workers.stats_sum)
    counters: tuple[str, ...] = ()

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return CONTINUE

    def runner(self) -> Callable[[Any], tuple[int, str | None]]:
        """What a chain calls per query: the action itself, or a function doing the same
        without the frame of __call__."""
        return self

    def __str__(self) -> str:
        return self.text


class DropAction(Action):
    text = "drop"

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return DROP, None


class AllowAction(Action):
    text = "allow"
    pure = True

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return ALLOW, None


class NoneAction(Action):
    text = "no op"
    pure = True


class PoolAction(Action):
    def __init__(self, pool: str) -> None:
        self.pool = pool

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return POOL, self.pool

    def __str__(self) -> str:
        return f"to pool {self.pool}"


class QPSPoolAction(PoolAction):
    def __init__(self, qps: int, pool: str) -> None:
        super().__init__(pool)
        self.qps = qps
        self.limiter = QPSLimiter(qps, qps)

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return (POOL, self.pool) if self.limiter.check() else CONTINUE

    def __str__(self) -> str:
        return f"max {self.qps} to pool {self.pool}"


class QPSAction(Action):
    def __init__(self, qps: int) -> None:
        self.qps = qps
        self.limiter = QPSLimiter(qps, qps)

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return CONTINUE if self.limiter.check() else (DROP, None)

    def __str__(self) -> str:
        return f"qps limit to {self.qps}"


class RCodeAction(Action):
    def __init__(self, rcode: int, config: ResponseConfig | None = None) -> None:
        self.rcode = rcode
        self.config = config or ResponseConfig()

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.rcode = self.rcode & 0x0F
        dq.set_flag(2, 0x80, True)
        self.config.apply(dq)
        return HEADER_MODIFY, None

    def __str__(self) -> str:
        return f"set rcode {self.rcode}"


class ERCodeAction(RCodeAction):
    def __call__(self, dq: Any) -> tuple[int, str | None]:
        verdict = super().__call__(dq)
        dq.ercode = self.rcode >> 4
        return verdict

    def __str__(self) -> str:
        return f"set ercode {rcode_text(self.rcode)}"


class TCAction(Action):
    text = "tc=1 answer"

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return TRUNCATE, None


class SetNoRecurseAction(Action):
    text = "set rd=0"

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.set_flag(2, 0x01, False)
        return CONTINUE


class SetDisableValidationAction(Action):
    text = "set cd=1"

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.set_flag(3, 0x10, True)
        return CONTINUE


class SetSkipCacheAction(Action):
    text = "skip cache"

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.skip_cache = True
        return CONTINUE


class SetTagAction(Action):
    def __init__(self, tag: str, value: str) -> None:
        self.tag, self.value = tag, value

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.set_tag(self.tag, self.value)
        return CONTINUE

    def __str__(self) -> str:
        return f"set tag '{self.tag}' to value '{self.value}'"


class SetTempFailureCacheTTLAction(Action):
    def __init__(self, ttl: int) -> None:
        self.ttl = ttl

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.temp_failure_ttl = self.ttl
        return CONTINUE

    def __str__(self) -> str:
        return f"set tempfailure cache ttl to {self.ttl}"


class SetECSOverrideAction(Action):
    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.ecs_override = self.on
        return CONTINUE

    def __str__(self) -> str:
        return f"set ECS override to {int(self.on)}"


class SetECSPrefixLengthAction(Action):
    def __init__(self, v4: int, v6: int) -> None:
        self.v4, self.v6 = v4, v6

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.ecs_prefix_length = self.v6 if ":" in dq.remote[0] else self.v4
        return CONTINUE

    def __str__(self) -> str:
        return f"set ECS prefix length to {self.v4}/{self.v6}"


class SetECSAction(Action):
    """A fixed ECS subnet for useClientSubnet backends (v6 one for IPv6 clients when given)."""

    def __init__(self, v4: str, v6: str | None = None) -> None:
        self.v4 = _network(v4)
        self.v6 = _network(v6) if v6 is not None else None

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        v6_client = ":" in dq.remote[0] and not dq.remote[0].startswith("::ffff:")
        dq.ecs_subnet = self.v6 if (self.v6 is not None and v6_client) else self.v4
        return CONTINUE

    def __str__(self) -> str:
        text = "set ECS to %s/%d" % self.v4
        return text + (" / %s/%d" % self.v6 if self.v6 is not None else "")


def _network(text: str) -> tuple[str, int]:
    """(masked network address, bits) of a netmask text, as dnsdist's Netmask keeps it."""
    net = ipaddress.ip_network(str(text).strip(), strict=False)
    return str(net.network_address), net.prefixlen


class SetProxyProtocolValuesAction(Action):
    """Replace the proxy protocol TLVs sent to useProxyProtocol backends."""
    text = "set Proxy-Protocol values"

    def __init__(self, values: list[tuple[int, bytes]]) -> None:
        self.values = list(values)

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.proxy_values = list(self.values)
        return CONTINUE


class SetAdditionalProxyProtocolValueAction(Action):
    """Add one proxy protocol TLV for useProxyProtocol backends."""

    def __init__(self, kind: int, value: bytes) -> None:
        self.kind, self.value = kind, value

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        if dq.proxy_values is None:
            dq.proxy_values = []
        dq.proxy_values.append((self.kind, self.value))
        return CONTINUE

    def __str__(self) -> str:
        return f"add a Proxy-Protocol value of type {self.kind}"


class SetDisableECSAction(Action):
    text = "disable ECS"

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        dq.use_ecs = False
        return CONTINUE


class DelayAction(Action):
    """UDP answers delayed by ms; rule processing continues."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return DELAY, str(self.ms)

    def __str__(self) -> str:
        return f"delay by {self.ms} msec"


class LogAction(Action):
    """`Packet from <ip:port> for <qname> <type> with id <id>` to the log (with -v unless
    verboseOnly=false) or a text file, or dnsdist's binary record; the id is the header field
    read in host order, as dnsdist prints it."""

    def __init__(self, path: str = "", binary: bool = True, append: bool = False,
                 buffered: bool = False, verbose_only: bool = True, timestamps: bool = False,
                 log: Callable[[str], None] | None = None, verbose: Callable[[], bool] | None = None
                 ) -> None:
        self.path, self.binary, self.verbose_only = path, binary, verbose_only
        self.timestamps = timestamps
        self.log = log or print
        self.verbose = verbose or (lambda: False)
        self.fp = None
        if path:
            self.fp = open(path, "ab" if append else "wb", buffering=-1 if buffered else 0)

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        if self.fp is not None and self.binary:
            self._write(self._record(dq))
            return CONTINUE
        from pydist.dns.netmask import format_address
        from pydist.dns.wire import qtype_to_text
        qid = dq.data[0] | (dq.data[1] << 8)
        line = (f"Packet from {format_address(dq.remote[0], dq.remote[1])} for {dq.qname} "
                f"{qtype_to_text(dq.qtype)} with id {qid}")
        if self.fp is None:
            if not self.verbose_only or self.verbose():
                self.log(line)
            return CONTINUE
        if self.timestamps:
            sec, nsec = _now_ns()
            line = f"[{sec}.{nsec}] " + line   # "%llu.%lu", as dnsdist: no zero padding
        self._write((line + "\n").encode("latin-1", "replace"))
        return CONTINUE

    def _record(self, dq: Any) -> bytes:
        """[u64 sec, u32 nsec], raw ID, qname wire, qtype (host order), family (host order),
        address bytes, port (network order)."""
        import socket
        import struct
        host, port = dq.remote[0], dq.remote[1]
        v6 = ":" in host
        out = b""
        if self.timestamps:
            sec, nsec = _now_ns()
            out += struct.pack("=QI", sec, nsec)
        out += bytes(dq.data[0:2]) + bytes(dq.data[12:dq.qname_end])
        out += struct.pack("=HH", dq.qtype, socket.AF_INET6 if v6 else socket.AF_INET)
        out += socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, host.split("%")[0])
        return out + struct.pack("!H", port)

    def _write(self, data: bytes) -> None:
        try:
            self.fp.write(data)
        except (OSError, ValueError):
            pass

    def __str__(self) -> str:
        return "log" + (f" to {self.path}" if self.path else "")


def _now_ns() -> tuple[int, int]:
    import time
    ns = time.time_ns()
    return ns // 1_000_000_000, ns % 1_000_000_000


class LuaAction(Action):
    """f(dq) -> (verdict[, text]); an error answers ServFail (the binding logs it)."""
    text = "Lua script"

    def __init__(self, func: Callable[[Any], tuple[int, str | None]],
                 text: str | None = None) -> None:
        self.func = func
        if text is not None:     # the FFI variants: "Lua FFI script", ...
            self.text = text

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return self.func(dq)

    def runner(self) -> Callable[[Any], tuple[int, str | None]]:
        return self.func


class ContinueAction(Action):
    def __init__(self, action: Action) -> None:
        self.action = action

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        verdict, extra = self.action(dq)
        if verdict == POOL:
            dq.pool = extra
        return CONTINUE

    def __str__(self) -> str:
        return f"continue after: {self.action}"


class SpoofAction(Action):
    """A/AAAA answers for the addresses of the asked family, or a CNAME (pointer to the qname)."""

    def __init__(self, addresses: list[str] | None = None, cname: Any = None,
                 config: ResponseConfig | None = None) -> None:
        self.addresses = [ipaddress.ip_address(a) for a in (addresses or [])]
        self.cname = cname
        self.config = config or ResponseConfig()

    def records(self, dq: Any) -> list[tuple[int, bytes]]:
        if self.cname is not None:
            return [(5, self.cname.to_wire())]
        out = []
        for a in self.addresses:
            t = 1 if a.version == 4 else 28
            if dq.qtype == t or dq.qtype == 255:
                out.append((t, a.packed))
        if len(out) > 1:
            random.shuffle(out)
        return out

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        recs = self.records(dq)
        if not recs:
            return CONTINUE
        build_answer(dq, recs, self.config, add_edns=self.add_edns)
        return HEADER_MODIFY, None

    add_edns = True

    def __str__(self) -> str:
        if self.cname is not None:
            return f"spoof in {self.cname} "
        return "spoof in " + "".join(f"{a} " for a in self.addresses)


class SpoofRawAction(SpoofAction):
    add_edns = False

    def __init__(self, raws: list[bytes], config: ResponseConfig | None = None) -> None:
        super().__init__(config=config)
        self.raws = raws

    def records(self, dq: Any) -> list[tuple[int, bytes]]:
        out = [(dq.qtype, r) for r in self.raws]
        if len(out) > 1:
            random.shuffle(out)     # as dnsdist 1.7.3 (checked): raw records come shuffled too
        return out

    def __str__(self) -> str:
        return "spoof in raw bytes "


def build_answer(dq: Any, records: list[tuple[int, bytes]], config: ResponseConfig,
                 add_edns: bool) -> None:
    """Replace dq.data by header + question + records (name 0xC00C, class IN) [+ OPT]."""
    edns_do = None
    if add_edns and dq.settings_add_edns and dq.opt_offset() >= 0:
        edns_do = dq.edns_do()
    config.apply(dq)
    dq.set_flag(2, 0x80, True)
    dq.rcode = 0
    ttl = config.ttl.to_bytes(4, "big")
    body = bytearray(dq.data[:12]) + dq.data[12:dq.qname_end + 4]
    body[4:12] = (b"\x00\x01" + len(records).to_bytes(2, "big") + b"\x00\x00"
                  + (b"\x00\x01" if edns_do is not None else b"\x00\x00"))
    for t, rdata in records:
        body += b"\xc0\x0c" + t.to_bytes(2, "big") + b"\x00\x01" + ttl
        body += len(rdata).to_bytes(2, "big") + rdata
    if edns_do is not None:
        body += opt_rr(dq.payload_size, edns_do)
    dq.data = body
    dq.spoof = True


class ObjectAction(Action):
    """Actions pydist accepts but does not carry out yet (loggers, SNMP, KV, proxy protocol...):
    they let the chain go on, in either kind of chain."""

    def __init__(self, text: str, response: bool = False) -> None:
        self.text = text
        self.response = response

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        return (R_NONE, None) if self.response else CONTINUE
