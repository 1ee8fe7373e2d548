"""A CDB writer (the format tinycdb and dnsdist's newCDBKVStore read), for test databases."""
from __future__ import annotations

import struct
from pathlib import Path

from pydist.kvstore import cdb_hash


def write_cdb(path: Path, items: dict[bytes, bytes]) -> None:
    records = bytearray()
    tables: list[list[tuple[int, int]]] = [[] for _ in range(256)]
    pos = 2048
    for key, value in items.items():
        h = cdb_hash(key)
        tables[h & 0xFF].append((h, pos))
        rec = struct.pack("<II", len(key), len(value)) + key + value
        records += rec
        pos += len(rec)
    header, body = [], bytearray()
    for entries in tables:
        slots = len(entries) * 2
        header += [pos + len(body), slots]
        table = [(0, 0)] * slots
        for h, rec_pos in entries:
            i = (h >> 8) % slots
            while table[i][1] != 0:
                i = (i + 1) % slots
            table[i] = (h, rec_pos)
        body += b"".join(struct.pack("<II", h, p) for h, p in table)
    path.write_bytes(struct.pack("<512I", *header) + bytes(records) + bytes(body))
