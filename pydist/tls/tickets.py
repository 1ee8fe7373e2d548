"""A DoT frontend's session-ticket keys, as dnsdist's OpenSSLTLSTicketKeysRing.

A ring of at most `numberOfTicketsKeys` keys, newest first: the newest seals new tickets, any
key in the ring opens one (and a ticket under an older key is sealed again). Keys come from
`ticketKeyFile` / `:loadTicketsKeys(file)` (80 bytes each: name 16, AES-256 key 32, HMAC-SHA256
key 32; the file's last key ends up active) or are drawn at random by `rotate()`. Several
servers sharing one file resume each other's sessions, and restarts keep them resumable.
"""
from __future__ import annotations

import os
from collections import deque

from pydist.tls.names import TLSConfigError

KEY_SIZE = 80
NAME_SIZE = 16


class TicketKey:
    """One key: its name (sent in the clear in each ticket) and its two secrets."""

    __slots__ = ("cipher", "hmac", "name")

    def __init__(self, raw: bytes) -> None:
        self.name, self.cipher, self.hmac = raw[:16], raw[16:48], raw[48:80]


class TicketKeyRing:
    """Newest key first; `lookup` by name is a dict read (one per resumption)."""

    def __init__(self, capacity: int = 5) -> None:
        self.capacity = max(1, capacity)
        self.keys: deque[TicketKey] = deque()
        self.by_name: dict[bytes, TicketKey] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: TicketKey) -> None:
        self.keys.appendleft(key)
        self.by_name[key.name] = key
        while len(self.keys) > self.capacity:
            old = self.keys.pop()
            if self.by_name.get(old.name) is old:
                del self.by_name[old.name]

    def export(self) -> list[bytes]:
        """The keys, newest first, 80 bytes each (what replace() takes)."""
        return [k.name + k.cipher + k.hmac for k in self.keys]

    def replace(self, raws: list[bytes]) -> None:
        """These keys (newest first) instead of ours, in place: the OpenSSL callback holds
        this ring. Worker processes take the supervisor's keys so that any worker opens a
        ticket another sealed (pydist.workers.tickets)."""
        self.keys.clear()
        self.by_name.clear()
        for raw in reversed(raws):
            self.add(TicketKey(raw))

    def rotate(self) -> None:
        """A fresh random key becomes active; the previous ones still open tickets."""
        self.add(TicketKey(os.urandom(KEY_SIZE)))

    def load_file(self, path: str) -> None:
        """Every whole key of a dnsdist ticket key file, in order (the last becomes active).

        :raises TLSConfigError: dnsdist's text, when not even one key could be read.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        count = len(data) // KEY_SIZE
        if count == 0:
            raise TLSConfigError("Unable to load a ticket key from the OpenSSL tickets key file")
        for i in range(count):
            self.add(TicketKey(data[i * KEY_SIZE:(i + 1) * KEY_SIZE]))

    # --- what the OpenSSL callback asks
    def active(self) -> tuple[bytes, bytes, bytes] | None:
        if not self.keys:
            return None
        key = self.keys[0]
        return key.name, key.cipher, key.hmac

    def lookup(self, name: bytes) -> tuple[bytes, bytes, bool] | None:
        key = self.by_name.get(name)
        if key is None:
            return None
        return key.cipher, key.hmac, key is self.keys[0]
