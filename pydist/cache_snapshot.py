"""Cache snapshots: the entries of one packet cache written to a file (on shutdown and on
demand) and read back at start, so a restart does not begin with an empty cache.

Format (all integers big-endian; documented in docs/cache.md):

    magic      12 bytes  b"PYDISTCACHE\\x00"
    version     u16      1
    saved_at    u64      unix seconds when written
    count       u32      number of records
    record * count:
      flags     u8       bit 0: the UDP map (else TCP); bit 1: a key with skipped EDNS option
                         contents cut out (a 1-tuple in memory)
      key       u16 length + bytes    the normalised query bytes dnsdist's hash reads
      ident     u16 length + bytes    empty, or the ECS source (u16 family, u8 prefix, address)
      added     u64      unix seconds the answer was stored
      validity  u64      unix seconds it expires
      response  u16 length + bytes    the backend's answer as cached
    crc32       u32      of every byte before it

Times are absolute, so the time that passed while the process was down is subtracted from
every TTL by the ordinary ageing; entries past their expiry (and past the stale window, when
serve-stale is on) are dropped and counted. A file that is damaged, truncated, of another
version or not a snapshot at all is ignored as a whole with one log line: the CRC makes a
partly read file impossible, and nothing in it can raise past ``load``.
"""
from __future__ import annotations

import os
import struct
import zlib
from typing import Any, Callable

from pydist.cache import PacketCache
from pydist.cache_counters import CacheCounters
from pydist.dns.ttl import ttl_offsets

MAGIC = b"PYDISTCACHE\x00"
VERSION = 1
_HEAD = struct.Struct("!12sHQI")
_TIMES = struct.Struct("!QQ")
_U16 = struct.Struct("!H")
_FLAG_UDP, _FLAG_CUT = 1, 2


class SnapshotError(Exception):
    """The file is not a snapshot this pydist can read (the reason is the message)."""


def _ident_bytes(ident: Any) -> bytes:
    if ident is None:
        return b""
    family, prefix, addr = ident
    return family.to_bytes(2, "big") + bytes((prefix,)) + addr


def _ident_value(raw: bytes) -> Any:
    if not raw:
        return None
    if len(raw) < 3:
        raise SnapshotError("bad ECS identity")
    return (int.from_bytes(raw[:2], "big"), raw[2], bytes(raw[3:]))


Record = tuple[bool, Any, bytes, int, int, Any]     # (udp, key, response, added, validity, ident)


def encode(records: list[Record], saved_at: int) -> bytes:
    """The file's bytes for decoded-form records."""
    out = [_HEAD.pack(MAGIC, VERSION, saved_at, len(records))]
    for udp, key, response, added, validity, ident in records:
        raw = key[0] if isinstance(key, tuple) else key
        ident_raw = _ident_bytes(ident)
        out.append(bytes(((_FLAG_UDP if udp else 0) | (_FLAG_CUT if isinstance(key, tuple) else 0),)))
        out.append(_U16.pack(len(raw)) + raw)
        out.append(_U16.pack(len(ident_raw)) + ident_raw)
        out.append(_TIMES.pack(added, validity))
        out.append(_U16.pack(len(response)) + response)
    body = b"".join(out)
    return body + zlib.crc32(body).to_bytes(4, "big")


def decode(data: bytes) -> tuple[int, list[Record]]:
    """(saved_at, [(udp, key, response, added, validity, ident)]) or SnapshotError."""
    if len(data) < _HEAD.size + 4:
        raise SnapshotError("too short")
    if data[:12] != MAGIC:
        raise SnapshotError("not a pydist cache snapshot")
    body, crc = data[:-4], int.from_bytes(data[-4:], "big")
    if zlib.crc32(body) != crc:
        raise SnapshotError("checksum mismatch (damaged or truncated)")
    _, version, saved_at, count = _HEAD.unpack_from(body)
    if version != VERSION:
        raise SnapshotError(f"version {version}, expected {VERSION}")
    pos = _HEAD.size
    records = []
    try:
        for _ in range(count):
            flags = body[pos]
            pos += 1
            key, pos = _chunk(body, pos)
            ident, pos = _chunk(body, pos)
            added, validity = _TIMES.unpack_from(body, pos)
            pos += _TIMES.size
            response, pos = _chunk(body, pos)
            k: Any = (key,) if flags & _FLAG_CUT else key
            records.append((bool(flags & _FLAG_UDP), k, response, added, validity,
                            _ident_value(ident)))
    except (IndexError, struct.error) as e:
        raise SnapshotError(f"record cut short: {e}") from None
    if pos != len(body):
        raise SnapshotError("trailing bytes after the records")
    return saved_at, records


def _chunk(body: bytes, pos: int) -> tuple[bytes, int]:
    size = _U16.unpack_from(body, pos)[0]
    end = pos + 2 + size
    if end > len(body):
        raise SnapshotError("record cut short")
    return bytes(body[pos + 2:end]), end


def dump(cache: PacketCache, now: float) -> tuple[bytes, int]:
    """Every entry of ``cache`` in the file's format, and how many there are."""
    records = [(bool(udp), key, entry.original(), entry.added, entry.validity, entry.ident)
               for udp in (0, 1) for key, entry in cache.items(udp)]
    return encode(records, int(now)), len(records)


def merge(dumps: list[bytes], now: float) -> tuple[bytes, int]:
    """Several dumps of one cache (one per worker process) as one file's bytes, and how many
    entries it holds: an entry more than one holds is kept once, the latest stored. A dump
    that does not decode is left out (it came from this pydist: it never happens)."""
    latest: dict[tuple[bool, Any, Any], Record] = {}
    for data in dumps:
        try:
            records = decode(data)[1]
        except SnapshotError:
            continue
        for rec in records:
            udp, key, _response, added, _validity, ident = rec
            seen = latest.get((udp, key, ident))
            if seen is None or seen[3] < added:
                latest[(udp, key, ident)] = rec
    return encode(list(latest.values()), int(now)), len(latest)


def write(path: str, data: bytes) -> None:
    """``data`` to ``path`` atomically (a temporary file renamed over it).
    :raises OSError: the file cannot be written."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as fp:
        fp.write(data)
    os.replace(tmp, path)


def save(cache: PacketCache, path: str, now: float) -> int:
    """Write every entry of ``cache`` to ``path`` (atomically); returns the number of entries
    written. :raises OSError: the file cannot be written."""
    data, count = dump(cache, now)
    write(path, data)
    return count


def load(cache: PacketCache, path: str, now: float, keep_for: int, counters: CacheCounters,
         log: Callable[[str], None]) -> int:
    """Bring the entries of ``path`` into ``cache``; entries expired more than ``keep_for``
    seconds ago are dropped. A missing file is no error (a first start); any other problem is
    one log line and an empty start. Returns the number of entries loaded."""
    try:
        with open(path, "rb") as fp:
            data = fp.read()
    except FileNotFoundError:
        return 0
    except OSError as e:
        log(f"Ignoring the cache snapshot '{path}': {e.strerror}")
        return 0
    try:
        _, records = decode(data)
    except SnapshotError as e:
        log(f"Ignoring the cache snapshot '{path}': {e}")
        return 0
    loaded, dropped = store_records(cache, records, now, keep_for)
    counters.snapshot_dropped += dropped
    counters.snapshot_loaded += loaded
    log(f"Loaded {loaded} entries from the cache snapshot '{path}'")
    return loaded


def store_records(cache: PacketCache, records: list[Record],
                  now: float, keep_for: int) -> tuple[int, int]:
    """Decoded records into ``cache``: (stored, dropped: expired or not storable)."""
    now_s = int(now)
    loaded = dropped = 0
    for udp, key, response, added, validity, ident in records:
        if validity + keep_for <= now_s or len(response) < 12:
            dropped += 1
            continue
        try:
            offsets = ttl_offsets(response)
        except Exception:  # noqa: BLE001 -- a record that passed the CRC but is no DNS answer
            dropped += 1
            continue
        if cache.store(udp, key, response, added, validity, offsets, ident, now_s) is None:
            dropped += 1
            continue
        loaded += 1
    return loaded, dropped
