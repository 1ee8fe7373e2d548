"""Domain names as dnsdist's DNSName, SuffixMatchNode and DNSNameSet see them."""
from __future__ import annotations

from typing import Iterable


class NameError_(ValueError):
    """A name dnsdist would refuse ("Unable to parse DNS name ...")."""


def _escape(label: bytes) -> str:
    out = []
    for b in label:
        c = chr(b)
        if c in ".\\":
            out.append("\\" + c)
        elif 0x20 < b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def parse_labels(text: str) -> tuple[bytes, ...]:
    """Presentation text (escapes allowed) to labels; '.' and '' are the root."""
    if text in ("", "."):
        return ()
    labels: list[bytes] = []
    cur = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            if i + 3 < n + 0 and text[i + 1:i + 4].isdigit():
                cur.append(int(text[i + 1:i + 4]) & 0xFF)
                i += 4
                continue
            cur += text[i + 1].encode("latin-1")
            i += 2
            continue
        if c == ".":
            if not cur:
                raise NameError_(f"Found . in wrong position in DNSName {text}")
            labels.append(bytes(cur))
            cur = bytearray()
        else:
            cur += c.encode("latin-1")
        i += 1
    if cur:
        labels.append(bytes(cur))
    if any(len(x) > 63 for x in labels):     # dnsdist's DNSName texts
        raise NameError_("label too long to append")
    if sum(len(x) + 1 for x in labels) + 1 > 255:
        raise NameError_("name too long to append")
    return tuple(labels)


def labels_from_wire(pkt: bytes, start: int = 12) -> tuple[bytes, ...]:
    """The uncompressed name at start (the question's qname)."""
    out = []
    off = start
    while True:
        ll = pkt[off]
        if ll == 0:
            return tuple(out)
        out.append(bytes(pkt[off + 1:off + 1 + ll]))
        off += ll + 1


class DNSName:
    """Labels as given (case kept for printing); equality and hashing ignore case."""

    __slots__ = ("labels", "key")

    def __init__(self, labels: Iterable[bytes] = ()) -> None:
        self.labels = tuple(labels)
        self.key = tuple(x.lower() for x in self.labels)

    @classmethod
    def from_text(cls, text: str) -> "DNSName":
        return cls(parse_labels(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DNSName) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        if not self.labels:
            return "."
        return ".".join(_escape(x) for x in self.labels) + "."

    def is_part_of(self, other: "DNSName") -> bool:
        n = len(other.key)
        return n <= len(self.key) and (n == 0 or self.key[-n:] == other.key)

    def count_labels(self) -> int:
        return len(self.labels)

    def wire_length(self) -> int:
        return sum(len(x) + 1 for x in self.labels) + 1

    def to_wire(self) -> bytes:
        return b"".join(bytes([len(x)]) + x for x in self.labels) + b"\x00"

    def sort_key(self) -> bytes:
        """DNSName::operator<: the lowercased wire storage compared from its end."""
        return self.to_wire().lower()[::-1]


class SuffixMatchNode:
    """A set of suffixes; check() is true for a name equal to or below one of them."""

    def __init__(self) -> None:
        self.names: dict[tuple[bytes, ...], DNSName] = {}
        self.max_len = 0

    def add(self, name: DNSName) -> None:
        if name.key not in self.names:
            self.names[name.key] = name
            self.max_len = max(self.max_len, len(name.key))

    def remove(self, name: DNSName) -> None:
        if self.names.pop(name.key, None) is not None:
            self.max_len = max((len(k) for k in self.names), default=0)

    def check_key(self, key: tuple[bytes, ...]) -> bool:
        names = self.names
        n = len(key)
        for i in range(max(0, n - self.max_len), n + 1):
            if key[i:] in names:
                return True
        return False

    def check(self, name: DNSName) -> bool:
        return self.check_key(name.key)

    def __len__(self) -> int:
        return len(self.names)

    def __str__(self) -> str:
        return ", ".join(str(n) for n in sorted(self.names.values(), key=DNSName.sort_key))


class DNSNameSet:
    """An exact-match set of names (newDNSNameSet)."""

    def __init__(self) -> None:
        self.names: dict[tuple[bytes, ...], DNSName] = {}

    def add(self, name: DNSName) -> None:
        self.names.setdefault(name.key, name)

    def __contains__(self, key: tuple[bytes, ...]) -> bool:
        return key in self.names

    def __len__(self) -> int:
        return len(self.names)
