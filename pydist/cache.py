"""dnsdist's packet cache: same key, matching rules, TTL handling and stats, in front of which
sits an exact-bytes index of ready-to-send answers (ARCHITECTURE rule 3).

Internally an entry is keyed on the bytes that feed dnsdist's 32-bit burtle hash (header bytes
2..11, lowercased qname, what follows the qname with skipped EDNS option contents removed), in
one dict per transport. That makes a lookup one C-speed dict probe and collisions impossible; the
burtle key itself is computed only by ``dump()``, where users see it.

Known differences from dnsdist 1.7.3 (all invisible on the wire):
* an entry's shard (dnsdist's ``burtle % shards``) is worked out late, for many entries at
  once, while no shard can be full yet (see _resolve): the same entries are refused when a
  shard is full;
* true 32-bit hash collisions cannot happen, so ``lookup_collisions``/``insert_collisions`` only
  count an ECS subnet mismatch under an equal key (parseECS with the ECS option skipped);
* the shard locks do not exist (one thread), so ``deferred_inserts``/``deferred_lookups`` stay 0.
"""

from __future__ import annotations

import struct
from typing import Iterator, TypeVar, Union

from pydist.dns.burtle import burtle
from pydist.dns.burtle_many import burtle_lanes, lanes_list
from pydist.dns.ttl import age_ttls_at, set_ttls_at, ttl_offsets
from pydist.dns.reader import (NO_TTL, labels_text, name_end, opt_after_question, options,
                               qname_end, qname_labels, ttl_walk)
from pydist.dns.wire import WireError, text_to_wire

CacheKey = Union[bytes, tuple]
"""bytes, or a 1-tuple of bytes when skipped EDNS option contents were cut out of the key
(a different type, so it can never equal a plain key with the same bytes)."""

MAX_ENTRY_SIZE = 4096
_RCODE_SERVFAIL = 2
_RCODE_NXDOMAIN = 3
_RCODE_REFUSED = 5
_OPT_COOKIE = 10
_OPT_ECS = 8
_QTYPE_ANY = 255
_ONE_QUESTION_ONE_ADDITIONAL = b"\x00\x01\x00\x00\x00\x00\x00\x01"
_RD_CD_MASK_HI = 0x01  # RD is the low bit of header byte 2
_RD_CD_MASK_LO = 0x10  # CD is bit 4 of header byte 3
_U32 = struct.Struct("!I")
_POOL_MAX = 4096
_MAX_PARTS = 64
_PARTS_WORTH = 256 * 1024   # bytes saved below which a transport keeps one dict


def _dict_bytes(n: int) -> int:
    """What CPython 3.11's dict of ``n`` entries (keys not all str) allocates for its table:
    a power-of-two index (1 to 8 bytes a slot) and 24-byte entries for two thirds of it."""
    size = 8
    while size * 2 // 3 < n:
        size *= 2
    width = 1 if size <= 0x80 else 2 if size <= 0x8000 else 4 if size <= 0x80000000 else 8
    return size * width + (size * 2 // 3) * 24


def _parts_for(max_entries: int) -> int:
    """How many dicts a transport's entries are spread over: the fewest that, full, allocate
    the least. A dict's table grows by doubling and is at most two thirds full, so one dict
    of 100,000 entries allocates 52 bytes an entry, ten of 10,000 (a fuller table each) 30.
    Costs one hash() and a modulo per lookup (the key's hash is computed once either way)."""
    best, best_bytes = 1, _dict_bytes(max_entries)
    for parts in range(2, _MAX_PARTS + 1):
        per_part = max_entries // parts + 1
        need = _dict_bytes(per_part + per_part // 16 + 8) * parts   # room for uneven spread
        if need < best_bytes * 0.9 and best_bytes - need >= _PARTS_WORTH:
            best, best_bytes = parts, need
    return best
_T = TypeVar("_T")
_HELD: list["PacketCache"] = []     # the caches with inserts held (PacketCache.holding)


def hold_inserts() -> None:
    """A batch of backend answers starts: inserts that need a shard hash wait (see
    PacketCache.holding)."""
    PacketCache.holding = True


def release_inserts() -> None:
    """The batch ended: the held inserts are done (keys hashed together)."""
    PacketCache.holding = False
    while _HELD:
        _HELD.pop()._store_held()


_NO_PARTS: tuple[dict, ...] = ({},)     # exact_parts' answer for a cache it must not share

NO_NOTE: tuple = (None, ())
"""A record's note before the packet path leaves one (see lookup_exact): no memo's."""


class _Entry(bytearray):
    """One cached answer, its bytes held once (issue 18: no second copy for the exact level):
    the entry *is* the answer's bytes (a bytearray with the entry's fields), one object less.

    The bytes are the backend's answer, which the exact-bytes level also sends as they are:
    the first hit of a query whose name has the stored case makes them that query's
    ready-to-send answer (RD/CD restored, TTLs aged in place, the ID written per hit). Every
    other reader copies them and sets ID, name case, RD/CD and TTLs for its own query, so none
    of them sees the difference; ``original()`` gives the bytes as stored, for snapshots and
    Redis. Hashed as an object (entries key the prefetch hit counts; distinct live entries
    never share an identity hash, so a dict finds each by identity).

    Memory (issue 18: a full cache no larger than dnsdist's): four slots, so an entry is
    112 bytes beside its answer. What the hot path never changes, (offsets, added, shard), is
    one tuple shared by every entry stored in the same second, shard and answer shape
    (PacketCache._meta); the ECS subnet has a slot only in caches with parseECS
    (_EcsEntry). ``note`` is what the packet path remembered about the query bytes this
    answer is served for (see lookup_exact), NO_NOTE until then."""

    __slots__ = ("validity", "stamp", "meta", "note")
    __hash__ = object.__hash__  # type: ignore[assignment]  # by identity: entries key dicts
    ident: object = None  # the query's ECS subnet (parseECS caches: _EcsEntry), else None
    # Made as bytearray makes it (the answer's bytes; no Python __init__: one frame less on
    # every insert), its fields then set by PacketCache.store:
    # validity: set to 0 when removed, so exact-level records see it die;
    # stamp: the second the TTLs in the bytes are aged to (added, then later), stored as
    #   ~second (negative) until the bytes are a ready-to-send answer (PacketCache._prepare);
    # meta: (TTL offsets, second added, shard), see PacketCache._meta;
    # note: NO_NOTE, until the packet path leaves one (see lookup_exact).
    validity: int
    stamp: int
    meta: tuple[tuple[int, ...], int, int]
    note: tuple

    @property
    def response(self) -> bytearray:
        """The answer's bytes: the entry itself."""
        return self

    @property
    def offsets(self) -> tuple[int, ...]:
        """Where the answer's TTLs are."""
        return self.meta[0]

    @property
    def added(self) -> int:
        """The second the answer was stored."""
        return self.meta[1]

    @property
    def shard(self) -> int:
        """Its shard, worked out once (see PacketCache._shard_of)."""
        return self.meta[2]

    @property
    def aged(self) -> int:
        """Seconds the TTLs in the bytes are aged by (in place)."""
        return self.aged_to() - self.meta[1]

    def aged_to(self) -> int:
        """The second the TTLs in the bytes are aged to, prepared or not."""
        stamp = self.stamp
        return stamp if stamp >= 0 else ~stamp

    def age_to(self, now_s: int) -> None:
        """Age the TTLs in place to ``now_s`` (a prepared entry's). Ageing only ever lowers a
        TTL to a floor of 0, so doing it in steps gives what ageing the stored TTLs at once
        gives."""
        step = now_s - self.stamp
        if step > 0:
            self.stamp = now_s
            unpack, pack = _U32.unpack_from, _U32.pack_into
            for off in self.meta[0]:
                ttl = unpack(self, off)[0]
                pack(self, off, ttl - step if ttl > step else 0)

    def original(self) -> bytes:
        """The answer with the TTLs it was stored with (a TTL aged down to 0 comes back as the
        age: only records shorter-lived than their entry, as in a SERVFAIL's, lose theirs)."""
        aged = self.aged
        if not aged:
            return bytes(self)
        buf = bytearray(self)
        unpack, pack = _U32.unpack_from, _U32.pack_into
        for off in self.meta[0]:
            pack(buf, off, unpack(buf, off)[0] + aged)
        return bytes(buf)


class _EcsEntry(_Entry):
    """An entry of a parseECS cache: the query's ECS subnet is compared on lookups."""

    __slots__ = ("ident",)


class _Exact(bytearray):
    """A ready-to-send answer of its own (its bytes), for an exact query whose name case
    differs from the stored answer's (the rare case: the same-case query uses the entry's
    bytes); its ``note`` as an entry's."""

    __slots__ = ("entry", "validity", "second", "note")

    def __init__(self, buf: bytearray, entry: _Entry, second: int) -> None:
        super().__init__(buf)
        self.entry = entry
        self.validity = entry.validity
        self.second = second
        self.note = NO_NOTE


def _take_note(rec: _Entry | _Exact, qkey: bytes, memo: dict[bytes, tuple]) -> bool:
    """A record without a current note of ``memo`` (see lookup_exact) takes the one waiting
    in ``memo`` for these bytes; False when none waits."""
    note = memo.pop(qkey, None)
    if note is None:
        return False
    rec.note = note
    return True


def _rd_cd_restored(buf: bytearray, query: bytes, orig_flags: int | None) -> None:
    """Put the query's original RD and CD bits into the answer's flags (dnsdist restoreFlags)."""
    if orig_flags is None:
        hi, lo = query[2], query[3]
    else:
        hi, lo = orig_flags >> 8, orig_flags & 0xFF
    buf[2] = (buf[2] & ~_RD_CD_MASK_HI & 0xFF) | (hi & _RD_CD_MASK_HI)
    buf[3] = (buf[3] & ~_RD_CD_MASK_LO & 0xFF) | (lo & _RD_CD_MASK_LO)


def _quirky_rdlen(hi: int, lo: int) -> int:
    """The OPT rdlen as dnsdist's hashAfterQname reads it: through a signed char (lo >= 128
    loses 256), which sends such packets down the 'hash everything raw' branch."""
    return (hi * 256 + lo - (256 if lo >= 128 else 0)) & 0xFFFF


def _client_subnet(query: bytes, qname_end: int) -> tuple | None:
    """The ECS source (family, prefix, masked address) of a one-question EDNS query, or None."""
    if query[4:12] != _ONE_QUESTION_ONE_ADDITIONAL:
        return None
    off = opt_after_question(query, qname_end)
    if off < 0:
        return None
    rdata = off + 11
    for code, start, end in options(query, rdata, rdata + ((query[off + 9] << 8) | query[off + 10]),
                                    strict=False):
        if code == _OPT_ECS and end - start >= 8:
            family, prefix = (query[start + 4] << 8) | query[start + 5], query[start + 6]
            addr = bytearray(query[start + 8:end])
            full, rest = divmod(prefix, 8)
            del addr[full + (1 if rest else 0):]
            if rest and addr:
                addr[-1] &= (0xFF << (8 - rest)) & 0xFF
            return (family, prefix, bytes(addr))
    return None


def _name_to_text(wire: bytes) -> str:
    """Presentation form of a key's uncompressed qname, escaped like pdns DNSName::toString."""
    try:
        return labels_text(qname_labels(wire, 0))
    except WireError:
        return "."


def _qname_len(wire: bytes, start: int) -> int:
    """Length of the uncompressed name at ``start`` in a key (labels plus the root byte)."""
    return name_end(wire, start) - start


class PacketCache:
    """A dnsdist packet cache (newPacketCache) with an exact-bytes fast level for hits."""

    # pydist's shared level (pydist/cache_redis.py), consulted by the packet path on a miss;
    # a class attribute, so a cache without pydist.cacheOptions pays one attribute read per miss
    second_level: object = None
    # True while the batched UDP backend drain hands a batch of answers over (hold_inserts):
    # an insert whose key's shard must be worked out (a shard may be full) then waits, with
    # every later insert into the same cache, until the batch ends, when their keys are hashed
    # together and the inserts done in their order (_store_held); no lookup runs meanwhile
    holding = False

    def __init__(self, max_entries: int, *, max_ttl: int = 86400, min_ttl: int = 0,
                 temporary_failure_ttl: int = 60, max_negative_ttl: int = 3600,
                 stale_ttl: int = 60, dont_age: bool = False, number_of_shards: int = 20,
                 deferrable_insert_lock: bool = True, parse_ecs: bool = False,
                 keep_stale_data: bool = False, cookie_hashing: bool = False,
                 skip_options: tuple[int, ...] | list[int] = ()) -> None:
        self.warnings: list[str] = []
        if max_entries == 0:
            self.warnings.append("The number of entries in the packet cache is set to 0, raising to 1")
            max_entries = 1
        if max_entries < number_of_shards:
            self.warnings.append(
                f"The number of entries ({max_entries}) in the packet cache is smaller than the "
                f"number of shards ({number_of_shards}), decreasing the number of shards to {max_entries}")
            number_of_shards = max_entries
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.min_ttl = min_ttl
        self.temporary_failure_ttl = temporary_failure_ttl
        self.max_negative_ttl = max_negative_ttl
        self.stale_ttl = stale_ttl
        self.dont_age = dont_age
        self.number_of_shards = number_of_shards
        self.deferrable_insert_lock = deferrable_insert_lock
        self.parse_ecs = parse_ecs
        self.keep_stale_data = keep_stale_data
        self.cookie_hashing = cookie_hashing
        skipped = set(skip_options)
        if cookie_hashing:
            skipped.discard(_OPT_COOKIE)  # verified against 1.7.3, even when in skipOptions
        else:
            skipped.add(_OPT_COOKIE)
        self.skip_options = frozenset(skipped)
        self._shard_capacity = max_entries // number_of_shards
        self._header_hashes: dict[bytes, int] = {}    # burtle of the key's header bytes
        self._shard_counts = [0] * number_of_shards   # the entries whose shard is known
        # [tcp, udp]: keys stored while no shard could be full, their shard not yet worked
        # out; `_room` more may be, and still none can be (see _resolve)
        self._pending: tuple[list[CacheKey], list[CacheKey]] = ([], [])
        self._pending_qlens: tuple[list[int], list[int]] = ([], [])   # their names' lengths
        self._room = self._shard_capacity
        self._stored = 0      # entries, both transports (sum of the counts and pending keys)
        self._held: list[tuple] = []      # store() arguments waiting for the batch's end
        # [tcp, udp]: the entries of each transport, so the UDP/TCP byte of dnsdist's key is
        # implied; each spread over a few dicts by Python's hash of the key (see _parts_for).
        self._nparts = _parts_for(max_entries)
        self._parts: tuple[tuple[dict[CacheKey, _Entry], ...], ...] = tuple(
            tuple({} for _ in range(self._nparts)) for _udp in (0, 1))
        self._exact: tuple[dict[bytes, _Exact], dict[bytes, _Exact]] = ({}, {})
        self._exact_limit = max(max_entries, 1)
        # Memory: equal values entries hold (seconds, expiry times, offsets, metas) are one
        # object each, not one per entry (see _share).
        self._pool: dict[object, object] = {}
        self._second: tuple[int, int, int] = (-1, -1, 0)   # see store()
        self.hits = 0
        self.misses = 0
        self.deferred_inserts = 0
        self.deferred_lookups = 0
        self.lookup_collisions = 0
        self.insert_collisions = 0
        self.ttl_too_shorts = 0

    # ------------------------------------------------------------------ storage

    def entry_for(self, udp: bool | int, key: CacheKey) -> _Entry | None:
        """The entry stored under ``key`` for the transport, or None."""
        return self._parts[udp][hash(key) % self._nparts].get(key)

    def items(self, udp: bool | int) -> Iterator[tuple[CacheKey, _Entry]]:
        """Every (key, entry) of the transport."""
        if self._held:
            self._store_held()
        for part in self._parts[udp]:
            yield from part.items()

    # ------------------------------------------------------------------ key

    def make_key(self, query: bytes, qname_end: int) -> CacheKey | None:
        """The normalised bytes that feed dnsdist's hash, minus the transport byte."""
        size = len(query)
        if size < 12 or qname_end < 13 or qname_end > size:
            return None
        if (self.skip_options and size > qname_end + 15
                and query[4:12] == _ONE_QUESTION_ONE_ADDITIONAL
                and (query[qname_end + 13] or query[qname_end + 14])):
            cut = self._cut_skipped_options(query, qname_end)
            if cut is not None:
                return (query[2:12] + query[12:qname_end].lower() + cut,)
        key = query[2:]
        if key.lower() == key:      # no capital anywhere (the usual query): the key as it is
            return key
        return query[2:12] + query[12:qname_end].lower() + query[qname_end:]

    def _cut_skipped_options(self, query: bytes, pos: int) -> bytes | None:
        """What follows the qname with skipped options' contents removed (hashAfterQname's
        walk); None when nothing was removed."""
        size = len(query)
        out = [query[pos:pos + 15]]
        rdlen = _quirky_rdlen(query[pos + 13], query[pos + 14])
        pos += 15
        if rdlen > size - pos:
            return None
        removed = False
        read = 0
        skip = self.skip_options
        while pos < size and read < rdlen and rdlen - read >= 4:
            code = (query[pos] << 8) | query[pos + 1]
            olen = (query[pos + 2] << 8) | query[pos + 3]
            if olen > rdlen - read - 4:
                break
            if code in skip:
                out.append(query[pos:pos + 4])
                removed = removed or olen > 0
            else:
                out.append(query[pos:pos + 4 + olen])
            pos += 4 + olen
            read += 4 + olen
        if not removed:
            return None
        out.append(query[pos:])
        return b"".join(out)

    def _resolve(self) -> None:
        """Work out the shard of every pending entry, all at once (dnsdist's burtle key modulo
        the shards: about 10 us for one key in Python, a fraction of that for many together,
        pydist/dns/burtle_many.py). A shard can only refuse an insert once full, so while
        the largest known count plus every pending entry stays under a shard's capacity, an
        insert needs no shard: it is stored, its shard worked out with the next batch. The
        batches start at a shard's capacity and shrink as the shards fill, so no insert
        stalls the loop for long and most keys are hashed in large batches."""
        counts = self._shard_counts
        shards, nparts = self.number_of_shards, self._nparts
        metas: dict[tuple[int, int], tuple[tuple[int, ...], int, int]] = {}
        for udp, keys in enumerate(self._pending):
            parts, qlens = self._parts[udp], self._pending_qlens[udp]
            for start in range(0, len(keys), 8192):          # bounded temporaries (RSS)
                chunk = keys[start:start + 8192]
                hashes = self._many_pieces(chunk, bool(udp), qlens[start:start + 8192])
                for key, h in zip(chunk, hashes):
                    entry = parts[hash(key) % nparts].get(key)
                    if entry is None:    # removed since (not by this class: it resolves first)
                        continue
                    shard = h % shards
                    meta = entry.meta     # one shared meta per (pending meta, shard)
                    new = metas.get((id(meta), shard))
                    if new is None:
                        new = metas[(id(meta), shard)] = self._meta(meta[0], meta[1], shard)
                    entry.meta = new
                    counts[shard] += 1
            keys.clear()
            qlens.clear()
        self._room = self._shard_capacity - max(counts)

    def _options_walked(self, raw: bytes, rest: int) -> bool:
        """Whether hashAfterQname walks the key's EDNS options (skipped ones configured, one
        question and one additional record, room for an OPT): else the rest is hashed whole."""
        return bool(self.skip_options) and rest > 15 and raw[2:10] == _ONE_QUESTION_ONE_ADDITIONAL

    def _header_hash(self, header: bytes) -> int:
        """burtle of a key's header bytes (flags and counts: a handful of values, remembered)."""
        h = self._header_hashes.get(header)
        if h is None:
            if len(self._header_hashes) >= 64:
                self._header_hashes.clear()
            h = self._header_hashes[header] = burtle(header, 0)
        return h

    def _many_pieces(self, keys: list[CacheKey], udp: bool,
                     qlens: list[int] | None = None) -> list[int]:
        """[_pieces(k, udp) for k in keys], the keys of one shape (the same pieces, see
        _layout, and size) hashed together (pydist/dns/burtle_many.py: a tenth of one by one),
        each piece read in place from the shape's keys joined. `qlens`: each key's name length
        when known (0: not known), the name's end then not walked again: the length of the
        name in the query the key was made from (insert's qname_end - 12)."""
        out = [0] * len(keys)
        shapes: dict[tuple, list[int]] = {}
        walked = bool(self.skip_options)
        for i, key in enumerate(keys):
            qlen = qlens[i] if qlens else 0
            if key.__class__ is tuple:
                raw = key[0]
                shape: tuple = (self._layout(key, qlen), len(raw))
            else:
                if not (qlen and len(key) >= 10 + qlen and key[9 + qlen] == 0):   # type: ignore
                    qlen = name_end(key, 10) - 10       # type: ignore[arg-type]
                size = len(key)
                if (size - qlen > 25 and walked
                        and self._options_walked(key, size - 10 - qlen)):  # type: ignore[arg-type]
                    shape = (self._layout(key, qlen), size)
                else:     # the usual key: the name, then what follows it in one piece
                    shape = (qlen, size)
            index = shapes.get(shape)
            if index is None:
                shapes[shape] = [i]
            else:
                index.append(i)
        last = b"\x01" if udp else b"\x00"
        for (layout, size), index in shapes.items():
            if layout.__class__ is int:
                layout = ((10, 10 + layout), (10 + layout, size)) if size > 10 + layout \
                    else ((10, 10 + layout),)
            # (a cut key's bytes may share their pieces with a walked key's)
            raws: list[bytes] = [k[0] if k.__class__ is tuple else k       # type: ignore
                                 for k in map(keys.__getitem__, index)]
            blob, count = b"".join(raws), len(raws)
            h = burtle_lanes(blob, size, count, 0, 10, 0)        # the header bytes, then each
            for piece_start, piece_end in layout:
                h = burtle_lanes(blob, size, count, piece_start, piece_end - piece_start, h)
            h = burtle_lanes(last * count, 1, count, 0, 1, h)
            for i, value in zip(index, lanes_list(h, count)):
                out[i] = value
        return out

    def _share(self, value: _T) -> _T:
        """The pooled object equal to ``value`` (an int, a tuple): values that many entries
        hold (the second they were added, their expiry, their meta) are kept once. The pool
        is forgotten when large; objects already shared stay shared."""
        pool = self._pool
        same = pool.get(value)
        if same is None:
            if len(pool) >= _POOL_MAX:
                pool.clear()
            pool[value] = same = value
        return same  # type: ignore[return-value]

    def _meta(self, offsets: tuple[int, ...], added: int, shard: int
              ) -> tuple[tuple[int, ...], int, int]:
        """An entry's (offsets, added, shard), shared with the entries stored in the same
        second, in the same shard, with answers of the same shape."""
        return self._share((self._share(offsets), added, shard))

    def _pieces(self, key: CacheKey, udp: bool) -> int:
        """dnsdist's 32-bit burtle key for a stored entry, rebuilt from its normalised key."""
        raw = key[0] if key.__class__ is tuple else key
        h = self._header_hash(raw[:10])                 # type: ignore[index]
        for start, end in self._layout(key):           # burtleCI: the name is lowercase
            h = burtle(raw[start:end], h)               # type: ignore[index]
        return burtle(b"\x01" if udp else b"\x00", h)

    def _layout(self, key: CacheKey, qlen: int = 0) -> tuple[tuple[int, int], ...]:
        """The pieces (start, end) of the key's bytes that dnsdist's hash chains after the
        header bytes (0 to 10): the name, then what follows it, whole or as hashAfterQname
        walks it (skipped options' contents absent from a cut key). `qlen`: the name's length
        when known."""
        raw: bytes = key[0] if key.__class__ is tuple else key     # type: ignore[assignment]
        if not (qlen and len(raw) >= 10 + qlen and raw[9 + qlen] == 0):
            qlen = _qname_len(raw, 10)
        end, size = 10 + qlen, len(raw)
        if size == end:
            return ((10, end),)
        cut = key.__class__ is tuple
        if not (cut or self._options_walked(raw, size - end)):
            return ((10, end), (end, size))
        return ((10, end), *self._after_qname_pieces(raw, end, cut))

    def _after_qname_pieces(self, raw: bytes, pos: int, cut: bool) -> list[tuple[int, int]]:
        """PacketCache::hashAfterQname's pieces of what follows the name at ``pos`` in a key
        (the packet after its ID; skipped options' contents absent when ``cut``)."""
        size = len(raw)
        if not self.skip_options:
            return [(pos, size)]
        if raw[2:10] != _ONE_QUESTION_ONE_ADDITIONAL or pos + 15 >= size:
            return [(pos, size)] if size > pos else []
        out = [(pos, pos + 15)]
        rdlen = _quirky_rdlen(raw[pos + 13], raw[pos + 14])
        pos += 15
        if rdlen > size - pos and not cut:
            return out + [(pos, size)] if pos < size else out
        read = 0
        while pos < size and read < rdlen and rdlen - read >= 4:
            code = (raw[pos] << 8) | raw[pos + 1]
            olen = (raw[pos + 2] << 8) | raw[pos + 3]
            if olen > rdlen - read - 4:
                return out + [(pos, size)]
            if code in self.skip_options:
                out.append((pos, min(pos + 4, size)))
                pos += 4 if cut else 4 + olen
            else:
                out.append((pos, min(pos + 4 + olen, size)))
                pos += 4 + olen
            read += 4 + olen
        if pos < size:
            out.append((pos, size))
        return out

    # ------------------------------------------------------------------ hot path

    def lookup(self, query: bytes, qname_end: int, udp: bool, now: float,
               stale_ok_for: int = 0, orig_flags: int | None = None,
               exact: bool = True) -> tuple[bytearray | None, CacheKey | None]:
        """dnsdist's cache get: (answer ready to send or None, key to pass to insert).

        ``orig_flags`` are the query's flags as the client sent them, when rules changed them
        (RD and CD come back from them). ``exact=False`` keeps this hit out of the exact level
        (for packet paths whose rules may rewrite the query).
        """
        if self._held:
            self._store_held()
        key = self.make_key(query, qname_end)
        if key is None:
            return None, None
        entry = self._parts[udp][hash(key) % self._nparts].get(key)
        if entry is None:
            self.misses += 1
            return None, key
        now_s = int(now)
        stale = False
        if entry.validity <= now_s:
            if now_s - entry.validity >= stale_ok_for:
                self.misses += 1
                return None, key
            stale = True
        if self.parse_ecs and not self._ident_matches(entry, query, qname_end):
            self.lookup_collisions += 1
            return None, key
        buf = self._serve(entry, query, qname_end, udp, now_s,
                          self.stale_ttl if stale else None, orig_flags, exact)
        if buf is None:
            return None, key
        self.hits += 1
        return buf, key

    def _serve(self, entry: _Entry, query: bytes, qname_end: int, udp: bool, now_s: int,
               stale_ttl: int | None, orig_flags: int | None, exact: bool) -> bytearray | None:
        """The answer to send for a matching entry: the query's ID, name case, RD and CD
        bits, TTLs aged (or set to ``stale_ttl`` for an expired entry); fresh answers also go
        into the exact-bytes level. None when the stored answer is too short for the query."""
        response = entry.response
        same_case = True
        if len(response) > 12:
            if len(response) < qname_end:
                return None
            same_case = response[12:qname_end] == query[12:qname_end]
        buf = bytearray(response)
        buf[0] = query[0]
        buf[1] = query[1]
        if not same_case:
            buf[12:qname_end] = query[12:qname_end]
        _rd_cd_restored(buf, query, orig_flags)
        if not self.dont_age:
            if stale_ttl is not None:
                set_ttls_at(buf, entry.meta[0], stale_ttl)
            else:
                age_ttls_at(buf, entry.meta[0], now_s - entry.aged_to())
        if exact and stale_ttl is None and (orig_flags is None
                                            or orig_flags == (query[2] << 8 | query[3])):
            self._fill_exact(entry, buf, query, qname_end, udp, now_s, same_case)
        return buf

    def _fill_exact(self, entry: _Entry, buf: bytearray, query: bytes, qname_end: int,
                    udp: bool, now_s: int, same_case: bool) -> None:
        """Make the answer just built for ``query`` one the exact-bytes level serves. When the
        stored name is the query's and in lowercase (the key's), the entry's own bytes are that
        answer: a query whose bytes are the key finds it in the cache's dict (lookup_exact),
        any other (skipped EDNS options) gets an index record pointing at it. Otherwise the
        record holds a copy of its own."""
        qname = query[12:qname_end]
        ex = self._exact[udp]
        if len(ex) >= self._exact_limit:
            ex.clear()
        if not same_case or qname.lower() != qname:
            ex[query[2:]] = _Exact(buf, entry, now_s)
            return
        if entry.stamp < 0:
            self._prepare(entry, query, now_s)
        if self.entry_for(udp, query[2:]) is not entry:
            ex[query[2:]] = entry

    def _prepare(self, entry: _Entry, query: bytes, now_s: int) -> None:
        """The entry's bytes become its queries' ready-to-send answer (``stamp`` >= 0 says
        so): RD and CD as theirs (the same for all: the flags are in the key), TTLs aged to
        ``now_s``."""
        _rd_cd_restored(entry, query, None)
        entry.stamp = self._share(~entry.stamp)
        if not self.dont_age:
            entry.age_to(self._share(now_s))

    def _ready_on_first_hit(self, entry: _Entry, query: bytes, now_s: int) -> bool:
        """An entry found under the query's own bytes but not yet a ready-to-send answer:
        made one here, as the full path's lookup would on this hit (_serve, _fill_exact), when
        that lookup would: the entry is fresh and its stored name has the query's case. So
        the first hit after a miss costs what every later one does. (parseECS caches compare
        the ECS subnet on lookups: left to the full path.)"""
        if now_s >= entry.validity or self.parse_ecs:
            return False
        if len(entry) > 12:
            try:
                end = qname_end(query)
            except WireError:
                return False
            if entry[12:end] != query[12:end]:
                return False
        self._prepare(entry, query, now_s)
        return True

    def lookup_exact(self, query: bytes, udp: bool, now_s: int,
                     memo: dict[bytes, tuple] | None = None) -> bytearray | None:
        """The exact-bytes level: a shared ready-to-send buffer (query ID already in it), or None.

        A query whose bytes after the ID are its entry's key (a lowercase name) finds the entry
        in the cache's own dict: no index record, no second copy. The buffer is reused by the
        next call for the same query: send it before calling again, and never change it.

        ``memo`` (the packet path's pure-chain memo, pydist/rule_path.py RuleMemo): the answer
        is served only with a current note for these bytes, kept on the record (its ``note``:
        ``(memo, ...)``); a note waiting in ``memo`` is taken onto the record. Without one:
        None, nothing counted (the full path decides).
        """
        qkey = query[2:]
        rec = self._parts[udp][hash(qkey) % self._nparts].get(qkey)
        if (rec is not None and rec.stamp == now_s and now_s < rec.validity
                and (memo is None or rec.note[0] is memo)):
            # the usual hit: ready, aged to this second, fresh, with its current verdict
            rec[0] = query[0]     # the ID: two item stores cost a third of a slice copy
            rec[1] = query[1]
            self.hits += 1
            return rec
        if rec is None or (rec.stamp < 0 and not self._ready_on_first_hit(rec, query, now_s)):
            rec = self._exact[udp].get(qkey)
            if rec is None:
                return None
            if rec.__class__ is _Exact:
                return self._variant_hit(rec, query, now_s, memo)
        if now_s >= rec.validity:     # expired, or removed (validity 0)
            return None
        if memo is not None and rec.note[0] is not memo and not _take_note(rec, qkey, memo):
            return None
        if rec.stamp != now_s and not self.dont_age:
            rec.age_to(now_s)
        rec[0] = query[0]
        rec[1] = query[1]
        self.hits += 1
        return rec

    def exact_parts(self, udp: bool) -> tuple[dict[CacheKey, _Entry], ...]:
        """This transport's dicts of entries, for the UDP drain loop, which serves the usual
        exact-level hit itself (lookup_exact's first case written out there, one call less
        per hit: found under the query's own bytes, stamp == the second, fresh, its note
        current; the ID written; counted in ``hits`` by the loop) and asks lookup_exact for
        everything else. Empty dicts for a cache that counts more per hit (a subclass with
        its own lookup_exact): then every hit goes through lookup_exact."""
        if type(self).lookup_exact is not PacketCache.lookup_exact:
            return _NO_PARTS
        return self._parts[udp]

    def _variant_hit(self, rec: _Exact, query: bytes, now_s: int,
                     memo: dict[bytes, tuple] | None) -> bytearray | None:
        """lookup_exact for a query whose name case differs from the stored answer's."""
        entry = rec.entry
        if entry.validity != rec.validity or now_s >= rec.validity:
            return None
        if memo is not None and rec.note[0] is not memo and not _take_note(rec, query[2:], memo):
            return None
        buf = rec
        if rec.second != now_s:
            rec.second = now_s
            if not self.dont_age:
                step = now_s - entry.aged_to()
                src = entry.response
                unpack, pack = _U32.unpack_from, _U32.pack_into
                for off in entry.meta[0]:
                    ttl = unpack(src, off)[0]
                    pack(buf, off, ttl - step if ttl > step else 0)
        buf[0] = query[0]
        buf[1] = query[1]
        self.hits += 1
        return buf

    def exact_entry(self, query: bytes, udp: bool) -> _Entry | None:
        """The entry behind the exact-level answer for ``query``, or None."""
        rec = self.entry_for(udp, query[2:])
        if rec is None or rec.stamp < 0:
            rec = self._exact[udp].get(query[2:])
        return rec.entry if rec.__class__ is _Exact else rec

    def insert(self, lookup_key: CacheKey | None, query: bytes, qname_end: int, udp: bool,
               response: bytes, now: float, temp_failure_ttl: int | None = None,
               same_question: bool = False) -> _Entry | None:
        """Store a backend answer under the key its query was looked up with (facts §4.2);
        returns the entry stored, or None. `same_question`: the caller checked that the
        answer's question is its query's, so a one-question answer's records start where the
        query's question ends (not read again)."""
        size = len(response)
        if size < 12 or size > MAX_ENTRY_SIZE:
            return None
        if not self.min_ttl and self._room <= 0 and self.is_full_everywhere():
            return None     # refused by store() anyway; no TTL to count as too short
        rcode = response[3] & 0x0F
        if rcode == _RCODE_SERVFAIL or rcode == _RCODE_REFUSED:
            lifetime = self.temporary_failure_ttl if temp_failure_ttl is None else temp_failure_ttl
            if lifetime == 0:
                return None
            offsets = ttl_offsets(response)
        else:
            # min_ttl_and_soa() written out: one call less on every miss
            found, lifetime, soa = ttl_walk(
                response, qname_end + 4 if same_question and response[4:6] == b"\x00\x01" else 0)
            if lifetime == NO_TTL:
                return None
            offsets = tuple(found)
            if rcode == _RCODE_NXDOMAIN or (rcode == 0 and soa):
                lifetime = min(lifetime, self.max_negative_ttl)
            elif lifetime > self.max_ttl:
                lifetime = self.max_ttl
            if lifetime < self.min_ttl:
                self.ttl_too_shorts += 1
                return None
        key = lookup_key if lookup_key is not None else self.make_key(query, qname_end)
        if key is None:
            return None
        now_s = int(now)
        validity = now_s + lifetime
        ident = _client_subnet(query, qname_end) if self.parse_ecs else None
        return self.store(udp, key, response, now_s, validity, offsets, ident, now_s,
                          qname_end - 12)

    def store(self, udp: bool, key: CacheKey, response: bytes | bytearray, added: int,
              validity: int, offsets: tuple[int, ...], ident: object,
              now_s: int, qlen: int = 0, shard_hash: int | None = None) -> _Entry | None:
        """Put one answer under ``key`` as dnsdist's insert does (shard capacity, an ECS
        collision, a longer-lived entry kept); also how a snapshot or the shared level brings
        an entry in with its own times. Returns the entry stored (which holds a copy of
        ``response``), or None. `qlen`: the length of the key's name when known (saves a walk
        of it when the shard is worked out); `shard_hash`: the key's dnsdist hash, worked out
        already (_store_held). None also when the insert waits for the end of a batch
        (`holding`), done then."""
        if self._held and shard_hash is None:      # after one that waits, all do (order)
            return self._hold((udp, key, response, added, validity, offsets, ident, now_s, qlen))
        cache = self._parts[udp][hash(key) % self._nparts]
        old = cache.get(key)
        if self._room <= 0:
            if self._pending[0] or self._pending[1]:
                self._resolve()
            if self._room <= 0:     # some shard may be full: this key's decides
                if self.is_full_everywhere():
                    return None     # whichever shard is this key's (no hash needed)
                if old is not None:
                    shard = old.meta[2]
                else:
                    if shard_hash is None:
                        if (PacketCache.holding and response.__class__ is bytes
                                and self.second_level is None):
                            return self._hold((udp, key, response, added, validity, offsets,
                                               ident, now_s, qlen))
                        shard_hash = self._pieces(key, bool(udp))
                    shard = shard_hash % self.number_of_shards
                if self._shard_counts[shard] >= self._shard_capacity:
                    return None
        if self._room > 0:          # no shard can be full: worked out later (_resolve)
            shard = -1 if old is None else old.meta[2]
        second = self._second
        if second[0] != added:      # a new second: its two shared ints (see _share)
            second = self._second = (added, self._share(added), self._share(~added))
        added = second[1]
        meta = self._pool.get((offsets, added, shard))    # what _meta() would find
        if ident is None:
            new = _Entry(response)
        else:
            new = _EcsEntry(response)
            new.ident = ident
        new.validity = self._share(validity)
        new.stamp = second[2]
        new.meta = meta if meta is not None else self._meta(offsets, added, shard)
        new.note = NO_NOTE
        if old is None:
            cache[key] = new
            self._stored += 1
            if shard < 0:
                self._pending[udp].append(key)
                self._pending_qlens[udp].append(qlen)
                self._room -= 1
            else:
                self._shard_counts[shard] += 1
            return new
        if old.validity > now_s and old.ident != ident:
            self.insert_collisions += 1
            return None
        if new.validity <= old.validity:
            return None
        old.validity = 0
        cache[key] = new
        return new

    def _hold(self, args: tuple) -> None:
        """Keep an insert for the end of the batch (see `holding`)."""
        if not self._held:
            _HELD.append(self)
        self._held.append(args)

    def _store_held(self) -> None:
        """The inserts kept during the batch, in their order, their keys hashed together."""
        held, self._held = self._held, []
        hashes = [0] * len(held)
        for udp in (0, 1):
            index = [i for i, args in enumerate(held) if bool(args[0]) == bool(udp)]
            if index:
                got = self._many_pieces([held[i][1] for i in index], bool(udp),
                                        [held[i][8] for i in index])
                for i, h in zip(index, got):
                    hashes[i] = h
        for args, h in zip(held, hashes):
            self.store(*args, shard_hash=h)

    def is_full_everywhere(self) -> bool:
        """Every shard is full: an insert is refused whatever its key (no shard needed; the
        entries are counted as stored and removed, the test runs on every miss of a full
        cache)."""
        return self._stored >= self._shard_capacity * self.number_of_shards

    def _ident_of(self, query: bytes, qname_end: int) -> object:
        """What dnsdist compares beyond the key: only the ECS subnet (parseECS), else None.

        The query flags are in the key: dnsdist stores the flags as they were after the rules
        (verified: NoRecurseAction/DisableValidationAction queries still hit, no collisions).
        """
        return _client_subnet(query, qname_end) if self.parse_ecs else None

    def _ident_matches(self, entry: _Entry, query: bytes, qname_end: int) -> bool:
        """cachedValueMatches for the part not in the key: the ECS subnet."""
        return entry.ident == self._ident_of(query, qname_end)

    # ------------------------------------------------------------------ maintenance

    def _entries_by_shard(self):
        """Every (transport, key, entry, shard) in a stable order (every shard worked out
        first); once all are read, the room for inserts that need no shard is what the
        removals left."""
        self._resolve()
        for udp in (0, 1):
            for key, entry in list(self.items(udp)):
                yield udp, key, entry, entry.shard
        self._room = self._shard_capacity - max(self._shard_counts)

    def _remove(self, udp: int, key: CacheKey, shard: int) -> None:
        entry = self._parts[udp][hash(key) % self._nparts].pop(key)
        entry.validity = 0
        self._shard_counts[shard] -= 1
        self._stored -= 1

    def purge_expired(self, upto: int, now: float) -> int:
        """Remove expired entries until each shard holds at most upto // shards; count them."""
        now_s = int(now)
        per_shard = upto // self.number_of_shards
        counts = self._shard_counts
        removed = 0
        for udp, key, entry, shard in self._entries_by_shard():
            if counts[shard] > per_shard and entry.validity <= now_s:
                self._remove(udp, key, shard)
                removed += 1
        return removed

    def expunge(self, upto: int = 0) -> int:
        """Remove entries, expired or not, until each shard holds at most upto // shards."""
        per_shard = upto // self.number_of_shards
        counts = self._shard_counts
        removed = 0
        for udp, key, _entry, shard in self._entries_by_shard():
            if counts[shard] > per_shard:
                self._remove(udp, key, shard)
                removed += 1
        if upto == 0:
            self._exact[0].clear()
            self._exact[1].clear()
        return removed

    def expunge_by_name(self, name: str, qtype: int = _QTYPE_ANY,
                        suffix_match: bool = False) -> int:
        """Remove the entries for ``name`` (or names under it) and ``qtype`` (255 = any)."""
        try:
            wire = text_to_wire(name.strip()).lower()
        except WireError:
            return 0
        removed = 0
        for udp, key, _entry, shard in self._entries_by_shard():
            raw = key[0] if isinstance(key, tuple) else key
            qlen = _qname_len(raw, 10)
            qname = raw[10:10 + qlen]
            if qname != wire and not (suffix_match and self._is_part_of(qname, wire)):
                continue
            if qtype != _QTYPE_ANY and int.from_bytes(raw[10 + qlen:12 + qlen], "big") != qtype:
                continue
            self._remove(udp, key, shard)
            removed += 1
        return removed

    @staticmethod
    def _is_part_of(qname: bytes, zone: bytes) -> bool:
        """DNSName::isPartOf on lowercased wire names: ``qname`` equals or is under ``zone``."""
        pos = 0
        while pos < len(qname):
            if qname[pos:] == zone:
                return True
            if qname[pos] == 0:
                return False
            pos += 1 + qname[pos]
        return False

    def maintenance(self, now: float, cleaning_percentage: int = 100,
                    any_server_up: bool = True) -> int:
        """The periodic cleaning (setCacheCleaningDelay/Percentage); keepStaleData holds it
        while no server of a pool using this cache is up."""
        if self.keep_stale_data and not any_server_up:
            return 0
        upto = self.max_entries * (100 - cleaning_percentage) // 100
        return self.purge_expired(upto, now)

    def resize(self, max_entries: int) -> None:
        """A hot reload gave this cache a new size (pydist/reload): the entries stay; a
        smaller size refuses inserts until cleaning and expiry bring each shard under it."""
        if self._held:
            self._store_held()
        self.max_entries = max(1, max_entries)
        self._shard_capacity = self.max_entries // self.number_of_shards
        self._resolve()      # the room left under the new capacity
        self._exact_limit = self.max_entries

    # ------------------------------------------------------------------ inspection

    @property
    def entries(self) -> int:
        """Number of stored entries (both transports)."""
        if self._held:
            self._store_held()
        return sum(len(part) for parts in self._parts for part in parts)

    def is_full(self) -> bool:
        """dnsdist isFull(): entries >= maxEntries."""
        return self.entries >= self.max_entries

    def to_string(self) -> str:
        """``pc:toString()``: ``entries/maxEntries``."""
        return f"{self.entries}/{self.max_entries}"

    def get_stats(self) -> dict[str, int]:
        """``pc:getStats()`` map."""
        return {
            "entries": self.entries,
            "maxEntries": self.max_entries,
            "hits": self.hits,
            "misses": self.misses,
            "deferredInserts": self.deferred_inserts,
            "deferredLookups": self.deferred_lookups,
            "lookupCollisions": self.lookup_collisions,
            "insertCollisions": self.insert_collisions,
            "ttlTooShorts": self.ttl_too_shorts,
        }

    def print_stats(self) -> str:
        """``pc:printStats()`` text, one line each, as dnsdist prints it."""
        return (f"Entries: {self.entries}/{self.max_entries}\n"
                f"Hits: {self.hits}\n"
                f"Misses: {self.misses}\n"
                f"Deferred inserts: {self.deferred_inserts}\n"
                f"Deferred lookups: {self.deferred_lookups}\n"
                f"Lookup Collisions: {self.lookup_collisions}\n"
                f"Insert Collisions: {self.insert_collisions}\n"
                f"TTL Too Shorts: {self.ttl_too_shorts}\n")

    def dump_lines(self, now: float) -> list[str]:
        """The lines ``pc:dump(file)`` writes, with dnsdist's burtle key, shard by shard."""
        import dns.rdatatype  # slow path only

        now_s = int(now)
        rows = []
        for udp in (0, 1):
            stored = list(self.items(udp))
            for start in range(0, len(stored), 8192):     # hashed together (_many_pieces)
                chunk = stored[start:start + 8192]
                for (key, entry), k in zip(chunk, self._many_pieces([c[0] for c in chunk],
                                                                      bool(udp))):
                    rows.append((k % self.number_of_shards, k, udp, key, entry))
        rows.sort(key=lambda r: r[0])
        lines = ["; dnsdist's packet cache dump follows\n", ";\n"]
        for _shard, k, udp, key, entry in rows:
            raw = key[0] if isinstance(key, tuple) else key
            qlen = _qname_len(raw, 10)
            resp = entry.response
            wire = resp[12:12 + qlen] if len(resp) >= 12 + qlen else raw[10:10 + qlen]
            qtype = int.from_bytes(raw[10 + qlen:12 + qlen], "big")
            lines.append(f"{_name_to_text(wire)} {entry.validity - now_s} "
                         f"{dns.rdatatype.to_text(qtype)} ; rcode {resp[3] & 0x0F}, key {k}, "
                         f"length {len(resp)}, received over UDP {udp}, added {entry.added}\n")
        return lines

    def dump(self, path: str, now: float) -> int:
        """``pc:dump(file)``: write every entry to ``path``; returns the entry count."""
        lines = self.dump_lines(now)
        with open(path, "w", encoding="utf-8") as fp:
            fp.writelines(lines)
        return len(lines) - 2
