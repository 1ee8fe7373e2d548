"""Dynamic blocks (facts §11): the netmask and suffix tables the packet path consults right after
the ACL, the inserts made by addDynBlocks/addDynBlockSMT and dynBlockRulesGroup():apply(), the
rates they read from the ring buffers, showDynBlocks, and the purge.

Rules, as dnsdist 1.7.3:
- An entry applies while now < until; expired entries stay (and count in dyn-block-nmg-size)
  until the purge, every setDynBlocksPurgeInterval seconds (60; 0 never).
- An entry's action None means the global setDynBlocksAction (Drop by default).
- A new block never shortens an existing one; extending a live block keeps its hit count.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from collections import Counter
from typing import Any, Callable

from pydist.dns.reader import WireError, question

# DNSAction values (facts §10.1)
DROP, NXDOMAIN, REFUSED, TRUNCATE, NONE, NOOP, NORECURSE = 0, 1, 2, 8, 10, 11, 12
ACTION_TEXT = {DROP: "Drop", NXDOMAIN: "Send NXDomain", REFUSED: "Send Refused",
               TRUNCATE: "Truncate over UDP", NORECURSE: "Set rd=0", NOOP: "Do nothing",
               NONE: "Do nothing"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DynBlock:
    """One block: why, until when (wall clock seconds), what to do, how often it hit."""

    __slots__ = ("reason", "until", "action", "blocks", "warning")

    def __init__(self, reason: str, until: float, action: int, warning: bool = False,
                 blocks: int = 0) -> None:
        self.reason, self.until, self.action = reason, until, action
        self.warning, self.blocks = warning, blocks


class DynBlocks:
    """The two block tables; `active` is False when both are empty (the packet path's one test)."""

    def __init__(self, stats: Any, log: Callable[[str], None]) -> None:
        self.stats = stats
        self.log = log
        self.nets: dict[Network, DynBlock] = {}
        # hot-path index: family -> ((prefix length, {address >> host bits: block}), ...),
        # longest prefix first; rebuilt on every change (changes are rare, lookups are not)
        self.index: dict[int, tuple[tuple[int, dict[int, DynBlock]], ...]] = {4: (), 6: ()}
        self.names: dict[tuple[bytes, ...], tuple[str, DynBlock]] = {}
        self.max_labels = 0
        self.default_action = DROP
        self.purge_interval = 60
        self.last_purge = time.time()
        self.on_change: Callable[[], None] | None = None
        self.active = False

    # --- lookups (packet path)
    def lookup_address(self, host: str, now: float) -> DynBlock | None:
        """The most specific live block covering host."""
        version, value = _address_int(host)
        if not version:
            return None
        for shift, table in self.index[version]:
            b = table.get(value >> shift)
            if b is not None:
                return b if now < b.until else None
        return None

    def may_block(self, host: str, now: float) -> bool:
        """Could a block apply to this client (a live address block, or any suffix block)?
        False lets a cache hit skip the full path."""
        return bool(self.names) or self.lookup_address(host, now) is not None

    def lookup_name(self, key: tuple[bytes, ...], now: float) -> DynBlock | None:
        """The live block on the qname or its closest enclosing suffix."""
        names = self.names
        n = len(key)
        for i in range(max(0, n - self.max_labels), n + 1):
            hit = names.get(key[i:])
            if hit is not None:
                return hit[1] if now < hit[1].until else None
        return None

    def action_of(self, block: DynBlock) -> int:
        return self.default_action if block.action == NONE else block.action

    # --- inserts
    def insert_network(self, net: Network, reason: str, seconds: int, action: int, now: float,
                       warning: bool = False, quiet: bool = False, shown: str = "") -> bool:
        """Insert or refresh a netmask block; True when the table changed."""
        until = now + seconds
        got = self.nets.get(net)
        count, expired, was_warning = 0, False, False
        if got is not None:
            if warning and not got.warning:
                return False           # a real block is never turned into a warning
            if not warning and got.warning:
                was_warning = True
            elif until < got.until:
                return False           # a longer block is already there
            if now < got.until:
                count = got.blocks     # extending a live block keeps its count
            else:
                expired = True
        self.nets[net] = DynBlock(reason, until, NOOP if warning else action, warning, count)
        if not quiet and (got is None or expired or was_warning):
            self.log(f"Inserting {'(warning) ' if warning else ''}dynamic block for "
                     f"{shown or net.network_address} for {seconds} seconds: {reason}")
        self._changed()
        return True

    def insert_name(self, key: tuple[bytes, ...], text: str, reason: str, seconds: int,
                    action: int, now: float, quiet: bool = False) -> bool:
        until = now + seconds
        got = self.names.get(key)
        count, expired = 0, False
        if got is not None:
            if until < got[1].until:
                return False
            if now < got[1].until:
                count = got[1].blocks
            else:
                expired = True
        self.names[key] = (text, DynBlock(reason, until, action, False, count))
        self.max_labels = max(self.max_labels, len(key))
        if not quiet and (got is None or expired):
            self.log(f"Inserting dynamic block for {text.rstrip('.') or '.'} for {seconds} "
                     f"seconds: {reason}")
        self._changed()
        return True

    # --- upkeep
    def clear(self) -> None:
        self.nets.clear()
        self.names.clear()
        self.max_labels = 0
        self._changed()

    def purge(self, now: float) -> None:
        """Forget expired entries (dnsdist's purge thread)."""
        self.nets = {k: v for k, v in self.nets.items() if now < v.until}
        self.names = {k: v for k, v in self.names.items() if now < v[1].until}
        self.max_labels = max((len(k) for k in self.names), default=0)
        self._changed()

    def maintenance(self) -> None:
        """Called by the engine's 1-s tick: purge when the interval has passed."""
        now = time.time()
        if self.purge_interval > 0 and now - self.last_purge >= self.purge_interval:
            self.last_purge = now
            self.purge(now)

    def _reindex(self) -> None:
        index: dict[int, dict[int, dict[int, DynBlock]]] = {4: {}, 6: {}}
        for net, block in self.nets.items():
            bits = net.max_prefixlen
            shift = bits - net.prefixlen
            index[net.version].setdefault(shift, {})[int(net.network_address) >> shift] = block
        self.index = {v: tuple((shift, tables[shift]) for shift in sorted(tables))
                      for v, tables in index.items()}

    def _changed(self) -> None:
        self._reindex()
        self.stats.dyn_block_nmg_size = len(self.nets)
        active = bool(self.nets or self.names)
        if active != self.active or self.on_change is not None:
            self.active = active
            if self.on_change is not None:
                self.on_change()

    # --- showDynBlocks
    def show(self, now: float) -> list[str]:
        out = [f"{'What':<24} {'Seconds':>8} {'Blocks':>8} {'Warning':<10} {'Action':<20} Reason"]
        nets = sorted(self.nets.items(), key=lambda kv: (kv[0].version, kv[0].network_address,
                                                         kv[0].prefixlen))
        rows = [(str(k), v) for k, v in nets]
        rows += [(text, b) for text, b in sorted(self.names.values(), key=lambda tb: tb[0])]
        for what, b in rows:
            if now < b.until:
                out.append(f"{what:<24} {int(b.until - now):>8d} {b.blocks:>8d} "
                           f"{str(b.warning).lower():<10} "
                           f"{ACTION_TEXT.get(self.action_of(b), 'Drop'):<20} {b.reason}")
        return out


def _address_int(host: str) -> tuple[int, int]:
    """(4 or 6, the address as an integer), IPv4-mapped IPv6 as IPv4; (0, 0) if not an IP."""
    host = host.split("%", 1)[0]
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, host), "big")
    except OSError:
        pass
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, host), "big")
    except OSError:
        return 0, 0
    if value >> 32 == 0xFFFF:
        return 4, value & 0xFFFFFFFF
    return 6, value


def host_network(host: str, v4: int = 32, v6: int = 128) -> Network:
    """The client's address truncated to the group's masks (setMasks)."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ipaddress.ip_network((ip, v4 if ip.version == 4 else v6), strict=False)


# --- the exceed* functions and the group rules read the ring buffers
def count_queries(rings: Any, seconds: int, now: float, qtype: int | None = None,
                  masks: tuple[int, int] = (32, 128)) -> Counter:
    """Queries per client network in the last `seconds` (the whole ring when 0)."""
    cutoff = now - seconds if seconds else 0.0
    counts: Counter = Counter()
    for entry in reversed(rings.queries):
        if entry[0] < cutoff:
            break
        if qtype is not None:
            pkt = entry[2]
            if _qtype_of(pkt) != qtype:
                continue
        counts[host_network(entry[1][0], *masks)] += 1
    return counts


def count_responses(rings: Any, seconds: int, now: float, rcode: int | None = None,
                    by_bytes: bool = False, masks: tuple[int, int] = (32, 128)) -> Counter:
    """Responses (or their bytes) per client network in the last `seconds`, timeouts left out."""
    cutoff = now - seconds if seconds else 0.0
    counts: Counter = Counter()
    for entry in reversed(rings.responses):
        if entry[0] < cutoff:
            break
        pkt = entry[2]
        if entry[3] < 0 or len(pkt) < 12:
            continue
        if rcode is not None and (pkt[3] & 0x0F) != rcode:
            continue
        counts[host_network(entry[1][0], *masks)] += len(pkt) if by_bytes else 1
    return counts


def _qtype_of(pkt: bytes) -> int:
    """The question's qtype, -1 for a packet without a readable question."""
    try:
        return question(pkt)[1]
    except WireError:
        return -1


def over_rate(counts: Counter, rate: float, seconds: int, rings: Any, now: float,
              responses: bool = False) -> dict[Network, int]:
    """Clients whose count exceeds rate x seconds (seconds 0: the ring's own time span)."""
    span = seconds
    if not seconds:
        ring = rings.responses if responses else rings.queries
        span = max(1e-9, now - ring[0][0]) if ring else 1.0
    limit = rate * span
    return {k: v for k, v in counts.items() if v > limit}
