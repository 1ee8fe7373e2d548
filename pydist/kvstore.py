"""Key-value stores for rules (dnsdist's newCDBKVStore and the KeyValueLookupKey* objects).

A CDB file (D. J. Bernstein's constant database, as tinycdb writes it) is read whole into
memory and looked up in place; it is read again when its modification time changes, checked at
most every `refresh` seconds, on lookups, as dnsdist does. A lookup key turns a query into the
list of keys to try, in order.
"""
from __future__ import annotations

import ipaddress
import os
import struct
import time
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("<512I")
_PAIR = struct.Struct("<II")


def cdb_hash(key: bytes) -> int:
    h = 5381
    for c in key:
        h = ((h << 5) + h) & 0xFFFFFFFF ^ c
    return h


class CDBFile:
    """One CDB file's bytes and its 256-table header; `get` is tinycdb's cdb_find."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 2048:
            raise ValueError("too short for a CDB file")
        self.data = data
        self.tables = _HEADER.unpack_from(data, 0)

    def get(self, key: bytes) -> bytes | None:
        """The key's first value; None when absent, or when the file is damaged there (a table
        or record pointing outside it), as tinycdb's lookup fails rather than reading past."""
        h = cdb_hash(key)
        i = (h & 0xFF) * 2
        pos, slots = self.tables[i], self.tables[i + 1]
        data = self.data
        if slots == 0 or pos + slots * 8 > len(data):
            return None
        start = (h >> 8) % slots
        for n in range(slots):
            slot_hash, rec = _PAIR.unpack_from(data, pos + ((start + n) % slots) * 8)
            if rec == 0:
                return None
            if slot_hash == h:
                if rec + 8 > len(data):
                    return None
                klen, dlen = _PAIR.unpack_from(data, rec)
                end = rec + 8 + klen + dlen
                if end > len(data):
                    return None
                if data[rec + 8:rec + 8 + klen] == key:
                    return data[rec + 8 + klen:end]
        return None


class CDBKVStore:
    """newCDBKVStore(path, refreshDelay): lookups on the file as it is now."""

    def __init__(self, path: str, refresh: int, log: Callable[[str], None]) -> None:
        self.path, self.refresh, self.log = path, refresh, log
        self.db: CDBFile | None = None
        self.mtime = -1.0
        self.next_check = 0.0
        self._reload(time.time())

    @classmethod
    def closed(cls, path: str) -> CDBKVStore:
        """A store that never opens its file (console client mode: nothing is looked up)."""
        store = cls.__new__(cls)
        store.path, store.refresh, store.log = path, 0, lambda line: None
        store.db, store.mtime, store.next_check = None, -1.0, float("inf")
        return store

    def _reload(self, now: float) -> None:
        self.next_check = now + self.refresh
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as e:
            self.log(f"Error while retrieving the last modification time of CDB database "
                     f"'{self.path}': {e.strerror}")
            return
        if mtime == self.mtime:
            return
        try:
            with open(self.path, "rb") as f:
                self.db = CDBFile(f.read())
            self.mtime = mtime
        except (OSError, ValueError) as e:
            self.log(f"Error while opening CDB database '{self.path}': {e}")

    def get(self, key: bytes) -> bytes | None:
        now = time.time()
        if self.refresh > 0 and now >= self.next_check:
            self._reload(now)
        return None if self.db is None else self.db.get(key)

    def get_range(self, key: bytes) -> tuple[bool, bytes | None]:
        """Range lookups need an ordered store: a CDB one never finds a range (dnsdist's
        KeyValueStore::getRangeValue)."""
        return False, None

    def reload(self) -> bool:
        """reload(): read the file again now, whatever its modification time."""
        self.mtime = -1.0
        self._reload(time.time())
        return self.mtime != -1.0


# --- lookup keys: the keys one query gives, in the order dnsdist tries them

class QNameKey:
    def __init__(self, wire: bool) -> None:
        self.wire = wire

    def keys(self, dq: Any) -> list[bytes]:
        return self.name_keys(dq.qname.key)

    def name_keys(self, labels: tuple[bytes, ...]) -> list[bytes]:
        """Lower-case labels to keys (no trailing dot in the text form)."""
        return [_wire(labels) if self.wire else _text(labels)]

    def __str__(self) -> str:
        return "qname in wire format" if self.wire else "qname"


class SuffixKey:
    def __init__(self, min_labels: int, wire: bool) -> None:
        self.min_labels, self.wire = min_labels, wire

    def keys(self, dq: Any) -> list[bytes]:
        return self.name_keys(dq.qname.key)

    def name_keys(self, labels: tuple[bytes, ...]) -> list[bytes]:
        """Lower-case labels to keys, longest first; the root alone is never a key."""
        out = []
        for i in range(len(labels)):
            rest = labels[i:]
            if self.min_labels and len(rest) < self.min_labels:
                break
            out.append(_wire(rest) if self.wire else _text(rest))
        return out

    def __str__(self) -> str:
        text = "suffix in wire format" if self.wire else "suffix"
        if self.min_labels:
            text += f" with at least {self.min_labels} label(s)"
        return text


class SourceIPKey:
    def __init__(self, v4_bits: int, v6_bits: int, include_port: bool) -> None:
        self.v4_bits, self.v6_bits, self.include_port = v4_bits, v6_bits, include_port

    def keys(self, dq: Any) -> list[bytes]:
        return self.address_keys(str(dq.remote[0]), int(dq.remote[1]))

    def address_keys(self, host: str, port: int) -> list[bytes]:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        bits = self.v4_bits if ip.version == 4 else self.v6_bits
        net = ipaddress.ip_network(f"{ip}/{bits}", strict=False)
        key = net.network_address.packed
        if self.include_port:
            key += struct.pack("!H", port)
        return [key]

    def __str__(self) -> str:
        text = f"source IP (masked to {self.v4_bits} (v4) / {self.v6_bits} (v6) bits)"
        return text + (" including the port" if self.include_port else "")


class TagKey:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def keys(self, dq: Any) -> list[bytes]:
        tags = dq.tags
        if not tags or self.tag not in tags:
            return []
        return [tags[self.tag].encode("latin-1", "replace")]

    def __str__(self) -> str:
        return f"value of the tag named '{self.tag}'"


def _wire(labels: tuple[bytes, ...]) -> bytes:
    """Wire format of these labels, root included."""
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"


def _text(labels: tuple[bytes, ...]) -> bytes:
    return b".".join(labels)
