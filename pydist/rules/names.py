"""Domain names as dnsdist's DNSName, SuffixMatchNode and DNSNameSet see them."""
from __future__ import annotations

from typing import Iterable

from pydist.dns.reader import NameTextError, labels_text, labels_wire, parse_name, qname_labels

NameError_ = NameTextError     # a name dnsdist would refuse ("Unable to parse DNS name ...")
parse_labels = parse_name      # presentation text (escapes allowed) to labels
labels_from_wire = qname_labels   # the uncompressed name at start (a question's qname)


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
        return labels_text(self.labels)

    def is_part_of(self, other: "DNSName") -> bool:
        n = len(other.key)
        return n <= len(self.key) and (n == 0 or self.key[-n:] == other.key)

    def count_labels(self) -> int:
        return len(self.labels)

    def wire_length(self) -> int:
        return sum(len(x) + 1 for x in self.labels) + 1

    def to_wire(self) -> bytes:
        return labels_wire(self.labels)

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
