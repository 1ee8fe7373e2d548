"""dnsdist's global counters: one ordered table that every exporter reads (dumpStats, web, carbon)."""
from __future__ import annotations

import os
import resource
import time
from typing import Callable

# Internal order of DNSDistStats::entries (dnsdist 1.7); dumpStats() sorts by name.
ENTRY_NAMES = (
    "responses", "servfail-responses", "queries", "frontend-nxdomain", "frontend-servfail",
    "frontend-noerror", "acl-drops", "rule-drop", "rule-nxdomain", "rule-refused",
    "rule-servfail", "rule-truncated", "self-answered", "downstream-timeouts",
    "downstream-send-errors", "trunc-failures", "no-policy", "latency0-1", "latency1-10",
    "latency10-50", "latency50-100", "latency100-1000", "latency-slow", "latency-avg100",
    "latency-avg1000", "latency-avg10000", "latency-avg1000000", "uptime", "real-memory-usage",
    "special-memory-usage", "udp-in-errors", "udp-noport-errors", "udp-recvbuf-errors",
    "udp-sndbuf-errors", "udp-in-csum-errors", "udp6-in-errors", "udp6-recvbuf-errors",
    "udp6-sndbuf-errors", "udp6-noport-errors", "udp6-in-csum-errors", "tcp-listen-overflows",
    "noncompliant-queries", "noncompliant-responses", "proxy-protocol-invalid", "rdqueries",
    "empty-queries", "cache-hits", "cache-misses", "cpu-iowait", "cpu-steal", "cpu-sys-msec",
    "cpu-user-msec", "fd-usage", "dyn-blocked", "dyn-block-nmg-size", "security-status",
    "doh-query-pipe-full", "doh-response-pipe-full", "outgoing-doh-query-pipe-full",
    "tcp-query-pipe-full", "tcp-cross-protocol-query-pipe-full",
    "tcp-cross-protocol-response-pipe-full", "latency-sum", "latency-count",
)
# The DoT answers' own averages: named by issue 6 as later dnsdist names them (1.8+; 1.7.3 has
# none), listed only when a DoT listener exists so configs without one keep 1.7.3's tables.
DOT_LATENCY_NAMES = ("latency-dot-avg100", "latency-dot-avg1000", "latency-dot-avg10000",
                     "latency-dot-avg1000000")
GAUGES = frozenset({"latency-avg100", "latency-avg1000", "latency-avg10000", "latency-avg1000000",
                    "uptime", "real-memory-usage", "fd-usage", "dyn-block-nmg-size",
                    "security-status", *DOT_LATENCY_NAMES,
                    "pydist-last-reload-time"})     # pydist/reload/history.py
DOUBLES = frozenset({"latency-avg100", "latency-avg1000", "latency-avg10000", "latency-avg1000000",
                     *DOT_LATENCY_NAMES})
_PAGE = os.sysconf("SC_PAGE_SIZE")
_HZ = os.sysconf("SC_CLK_TCK")


def _attr(name: str) -> str:
    return name.replace("-", "_").replace("latency0_1", "latency0_1")


class Stats:
    """Plain integer counters bumped by the packet path; derived figures computed on demand."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        for name in ENTRY_NAMES:
            setattr(self, _attr(name), 0)
        self.latency_avg100 = self.latency_avg1000 = 0.0
        self.latency_avg10000 = self.latency_avg1000000 = 0.0
        self.latency_dot_avg100 = self.latency_dot_avg1000 = 0.0
        self.latency_dot_avg10000 = self.latency_dot_avg1000000 = 0.0
        self.with_dot = False           # a DoT listener exists: DOT_LATENCY_NAMES are listed
        # pydist's own entries (pydist/cache_ext.py), listed after dnsdist's only once a
        # feature registers them, so dnsdist's tables stay as they are otherwise
        self.extra: dict[str, Callable[[], float]] = {}
        self.extra_help: dict[str, str] = {}

    def latency_sample(self, usec: float) -> None:
        """One backend answer relayed: histogram, averages, sum and count as dnsdist keeps them."""
        if usec < 1000:
            self.latency0_1 += 1
        elif usec < 10000:
            self.latency1_10 += 1
        elif usec < 50000:
            self.latency10_50 += 1
        elif usec < 100000:
            self.latency50_100 += 1
        elif usec < 1000000:
            self.latency100_1000 += 1
        else:
            self.latency_slow += 1
        self.latency_sum += int(usec / 1000)
        self.latency_count += 1
        self.latency_avg100 = self.latency_avg100 * 0.99 + usec / 100
        self.latency_avg1000 = self.latency_avg1000 * 0.999 + usec / 1000
        self.latency_avg10000 = self.latency_avg10000 * 0.9999 + usec / 10000
        self.latency_avg1000000 = self.latency_avg1000000 * 0.999999 + usec / 1000000

    def zero_latency_samples(self, n: int) -> None:
        """n answers served without a backend (cache hits, self-answered): samples of 0, batched."""
        if n <= 0:
            return
        self.latency0_1 += n
        self.latency_count += n
        if n == 1:      # one answer of the full path: the same factors, no powers to compute
            self.latency_avg100 *= 0.99
            self.latency_avg1000 *= 0.999
            self.latency_avg10000 *= 0.9999
            self.latency_avg1000000 *= 0.999999
            return
        self.latency_avg100 *= 0.99 ** n
        self.latency_avg1000 *= 0.999 ** n
        self.latency_avg10000 *= 0.9999 ** n
        self.latency_avg1000000 *= 0.999999 ** n

    def dot_latency_sample(self, usec: float) -> None:
        """One answer to a DoT client (0 when it came from the cache or from dnsdist itself)."""
        self.latency_dot_avg100 = self.latency_dot_avg100 * 0.99 + usec / 100
        self.latency_dot_avg1000 = self.latency_dot_avg1000 * 0.999 + usec / 1000
        self.latency_dot_avg10000 = self.latency_dot_avg10000 * 0.9999 + usec / 10000
        self.latency_dot_avg1000000 = self.latency_dot_avg1000000 * 0.999999 + usec / 1000000

    def count_rcode(self, rcode: int) -> None:
        if rcode == 0:
            self.frontend_noerror += 1
        elif rcode == 3:
            self.frontend_nxdomain += 1
        elif rcode == 2:
            self.frontend_servfail += 1

    def value(self, name: str) -> float:
        """Current value of one entry, reading the process figures dnsdist reads."""
        fn = _DYNAMIC.get(name)
        if fn is not None:
            return fn(self)
        if name in self.extra:
            return self.extra[name]()
        return getattr(self, _attr(name))

    def snapshot(self, include_special: bool = True) -> list[tuple[str, float]]:
        snmp = _read_snmp()
        out = []
        for name in ENTRY_NAMES:
            if name == "special-memory-usage" and not include_special:
                continue
            if name in _SNMP_KEYS:
                out.append((name, snmp.get(_SNMP_KEYS[name], 0)))
            else:
                out.append((name, self.value(name)))
            if name == "latency-avg1000000" and self.with_dot:
                out.extend((n, getattr(self, _attr(n))) for n in DOT_LATENCY_NAMES)
        if self.extra:
            out.extend((n, fn()) for n, fn in self.extra.items())
        return out


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _fd_count() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _cpu_stat(index: int) -> int:
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
        return int(parts[index])
    except (OSError, IndexError, ValueError):
        return 0


_SNMP_KEYS = {
    "udp-in-errors": ("Udp", "InErrors"), "udp-noport-errors": ("Udp", "NoPorts"),
    "udp-recvbuf-errors": ("Udp", "RcvbufErrors"), "udp-sndbuf-errors": ("Udp", "SndbufErrors"),
    "udp-in-csum-errors": ("Udp", "InCsumErrors"), "udp6-in-errors": ("Udp6", "Udp6InErrors"),
    "udp6-recvbuf-errors": ("Udp6", "Udp6RcvbufErrors"),
    "udp6-sndbuf-errors": ("Udp6", "Udp6SndbufErrors"),
    "udp6-noport-errors": ("Udp6", "Udp6NoPorts"),
    "udp6-in-csum-errors": ("Udp6", "Udp6InCsumErrors"),
    "tcp-listen-overflows": ("TcpExt", "ListenOverflows"),
}


def _read_snmp() -> dict[tuple[str, str], int]:
    """Udp/TcpExt figures from /proc/net/snmp, snmp6 and netstat, as dnsdist reads them."""
    out: dict[tuple[str, str], int] = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for head, vals in zip(lines[::2], lines[1::2]):
            hk, vk = head.split(), vals.split()
            if hk and vk and hk[0] == vk[0]:
                for k, v in zip(hk[1:], vk[1:]):
                    try:
                        out[(hk[0].rstrip(":"), k)] = int(v)
                    except ValueError:
                        pass
    try:
        with open("/proc/net/snmp6") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    out[("Udp6", parts[0])] = int(parts[1])
    except (OSError, ValueError):
        pass
    return out


def snmp_value(name: str) -> int:
    return _read_snmp().get(_SNMP_KEYS[name], 0)


_DYNAMIC: dict[str, Callable[[Stats], float]] = {
    "uptime": lambda s: int(time.monotonic() - s.start),
    "real-memory-usage": lambda s: _rss(),
    "special-memory-usage": lambda s: _rss(),
    "cpu-user-msec": lambda s: int(resource.getrusage(resource.RUSAGE_SELF).ru_utime * 1000),
    "cpu-sys-msec": lambda s: int(resource.getrusage(resource.RUSAGE_SELF).ru_stime * 1000),
    "cpu-iowait": lambda s: _cpu_stat(5),
    "cpu-steal": lambda s: _cpu_stat(8),
    "fd-usage": lambda s: _fd_count(),
}
for _n in _SNMP_KEYS:
    _DYNAMIC[_n] = (lambda n: (lambda s: snmp_value(n)))(_n)


def format_dump_stats(entries: list[tuple[str, float]]) -> str:
    """dumpStats(): names sorted, two columns, layout of facts §5."""
    items = sorted(entries, key=lambda kv: kv[0])
    half = (len(items) + 1) // 2
    left, right = items[:half], items[half:]

    def cell(name: str, value: float) -> str:
        if name in DOUBLES or isinstance(value, float):
            return f"{name:<35}\t    {value:9.1f}"
        return f"{name:<35}\t{int(value):>11}"

    lines = []
    for i, (name, value) in enumerate(left):
        line = cell(name, value) + " "
        if i < len(right):
            line = line.ljust(51) + cell(*right[i])
        lines.append(line.rstrip(" ") if i >= len(right) else line)
    return "".join(line + "\n" for line in lines)
