"""The shared second cache level in Redis: looked up on a local miss within a time budget,
written with the answer's remaining TTL after each backend answer.

Keys follow dnsdist's cache key: the normalised query bytes the local cache keys on (header
flags with RD and CD, lowercased name, type, class, the whole EDNS part with the DO bit and the
ECS option the query carries to the backend), the transport, the ECS source when parseECS is on,
and a namespace (the pool by default), so instances with the same settings share answers and
a client's ECS-scoped answer is never served to another subnet:

    b"pydist:c1:" namespace b":" (b"u" | b"t") (b"k" | b"x") key-bytes [b"\\x00ecs" ident]

Values: b"PDC1" u64 added, u64 validity (unix seconds), then the answer; Redis expires the key
with the entry. A value that does not read as one is counted as an error and ignored.

Failure rules: a lookup never takes longer than ``redisTimeout`` (counted as a timeout), any
error is counted and the query goes to a backend as if Redis were not configured; after a
connection error Redis is left alone for one second (lookups counted as skipped), so a dead
Redis costs a query nothing. Writes are fire-and-forget, at most ``MAX_PENDING_WRITES`` at a
time (beyond that they are skipped and counted). A lookup that ran out of budget is not
cancelled: its MGET finishes on its own (at most ``MAX_BATCHES`` of them), so a slow Redis
never has its connections torn down and rebuilt per query.
"""
from __future__ import annotations

import asyncio
import struct
import time
from typing import Any, Callable

from pydist.cache_counters import CacheCounters
from pydist.dns.ttl import ttl_offsets

_VALUE_MAGIC = b"PDC1"
_TIMES = struct.Struct("!QQ")
_HEAD_SIZE = len(_VALUE_MAGIC) + _TIMES.size
MAX_PENDING_WRITES = 1000
WRITE_GATHER = 0.01         # seconds writes are gathered before one pipeline sends them
WRITE_BATCH = 64            # ... or fewer, when this many are waiting
MAX_PIPELINES = 2           # write pipelines in flight at once
MAX_BATCHES = 8             # MGETs in flight at once; beyond, lookups are skipped (counted)
DOWN_HOLD = 1.0             # seconds Redis is left alone after a connection error
WRITE_TIMEOUT = 1.0


def redis_key(namespace: bytes, udp: bool, key: Any, ident: Any) -> bytes:
    """The Redis key of one cache key (see the module docstring)."""
    raw = key[0] if isinstance(key, tuple) else key
    out = b"pydist:c1:" + namespace + b":" + (b"u" if udp else b"t") + \
        (b"x" if isinstance(key, tuple) else b"k") + raw
    if ident is not None:
        family, prefix, addr = ident
        out += b"\x00ecs" + family.to_bytes(2, "big") + bytes((prefix,)) + addr
    return out


def encode_value(response: bytes, added: int, validity: int) -> bytes:
    return _VALUE_MAGIC + _TIMES.pack(added, validity) + response


def decode_value(raw: Any) -> tuple[bytes, int, int] | None:
    """(answer, added, validity), or None for anything that is not one of our values."""
    if not isinstance(raw, bytes) or len(raw) < _HEAD_SIZE + 12 or not raw.startswith(_VALUE_MAGIC):
        return None
    added, validity = _TIMES.unpack_from(raw, len(_VALUE_MAGIC))
    response = raw[_HEAD_SIZE:]
    if added > validity or not response[2] & 0x80 or response[4:6] != b"\x00\x01":
        return None      # not a DNS answer to one question
    return response, added, validity


def answers_key(response: bytes, key: Any) -> bool:
    """Is ``response`` an answer to the question in ``key`` (name, type, class)? Guards against
    a value written under the wrong key by anything but pydist."""
    raw = key[0] if isinstance(key, tuple) else key
    end = 10
    while end < len(raw) and raw[end] != 0:
        end += 1 + raw[end]
    name_len = end + 1 - 10
    return (response[12:12 + name_len].lower() == raw[10:10 + name_len]
            and response[12 + name_len:16 + name_len] == raw[10 + name_len:14 + name_len])


class _Batch:
    """The lookups of one loop iteration: one MGET, one timer for the budget."""

    __slots__ = ("items", "done", "timer")

    def __init__(self) -> None:
        self.items: list[tuple[bytes, Any, Callable[[Any], None]]] = []
        self.done = False
        self.timer: Any = None


Found = tuple[bytes, int, int, tuple[int, ...]]
"""What a lookup found: (answer, added, validity, TTL offsets)."""


class RedisLevel:
    """One cache's shared level: the client, the budget and the counters it feeds.

    Cost: redis-py spends tens of microseconds of Python per command, so the lookups of one
    loop iteration (a drained batch of datagrams) go out as one MGET with one timer for the
    budget, and the writes of up to 10 ms (or 64 writes) as one pipeline (about 20 µs a
    write instead of 100); a query waits on a callback, not a task of its own.
    """

    def __init__(self, url: str, timeout: float, namespace: bytes, counters: CacheCounters,
                 log: Callable[[str], None]) -> None:
        self.url = url
        self.timeout = timeout
        self.namespace = namespace
        self.counters = counters
        self.log = log
        self.client: Any = None
        self.loop: Any = None
        self.down_until = 0.0
        self.reachable = True        # for one log line per outage, not one per query
        self.open: _Batch | None = None
        self.batches_in_flight = 0
        self.writes: list[tuple[bytes, bytes, int]] = []
        self.write_timer: Any = None
        self.pipelines = 0           # write pipelines in flight
        self.pending = 0             # writes queued or in flight
        self.tasks: set[asyncio.Task] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Create the client (no connection yet: the first lookup makes one)."""
        from redis.asyncio import ConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        # enough connections for every MGET and pipeline allowed in flight, so the pool never
        # refuses one (a blocking pool costs ~15 µs more per command); no retries: the
        # budget is short
        pool = ConnectionPool.from_url(
            self.url, max_connections=MAX_BATCHES + MAX_PIPELINES, socket_connect_timeout=1.0,
            socket_timeout=1.0, retry=Retry(NoBackoff(), 0))
        self.client = Redis(connection_pool=pool)
        self.loop = loop

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- lookups
    def lookup(self, udp: bool, key: Any, ident: Any, on_done: Callable[[Found | None], None]
               ) -> None:
        """Ask Redis for ``key``; ``on_done`` is called once, with what was found or None
        (miss, timeout, error, Redis left alone after an error), within the budget."""
        if (self.client is None or self.batches_in_flight >= MAX_BATCHES
                or time.monotonic() < self.down_until):
            self.counters.redis_skipped += 1
            return on_done(None)
        batch = self.open
        if batch is None:
            batch = self.open = _Batch()
            self.loop.call_soon(self._send, batch)
        batch.items.append((redis_key(self.namespace, udp, key, ident), key, on_done))

    def _send(self, batch: _Batch) -> None:
        self.open = None
        self.batches_in_flight += 1
        batch.timer = self.loop.call_later(self.timeout, self._expire, batch)
        self._spawn(self._mget(batch))

    async def _mget(self, batch: _Batch) -> None:
        try:
            values = await self.client.mget([item[0] for item in batch.items])
        except Exception as e:  # noqa: BLE001 -- whatever Redis does, the queries go on
            if not batch.done:
                self.counters.redis_errors += len(batch.items)
            self._failed(e)
            values = None
        finally:
            self.batches_in_flight -= 1
        if batch.done:           # the budget ran out first: already answered, counted
            return
        batch.done = True
        batch.timer.cancel()
        if values is None:
            return _finish(batch, [None] * len(batch.items), self.log)
        self._back()
        now = int(time.time())
        _finish(batch, [self._found(raw, item[1], now) for item, raw in
                        zip(batch.items, values)], self.log)

    def _expire(self, batch: _Batch) -> None:
        if batch.done:
            return
        batch.done = True
        self.counters.redis_timeouts += len(batch.items)
        _finish(batch, [None] * len(batch.items), self.log)

    def _found(self, raw: Any, key: Any, now: int) -> Found | None:
        c = self.counters
        if raw is None:
            c.redis_misses += 1
            return None
        value = decode_value(raw)
        if value is None or not answers_key(value[0], key):
            c.redis_errors += 1
            return None
        response, added, validity = value
        if validity <= now:
            c.redis_misses += 1
            return None
        c.redis_hits += 1
        return response, added, validity, ttl_offsets(response)

    # ---- writes
    def store(self, udp: bool, key: Any, ident: Any, response: bytes, added: int,
              validity: int, now: float) -> None:
        """Write one entry in the background with its remaining lifetime as Redis TTL."""
        ttl = validity - int(now)
        if self.client is None or ttl <= 0 or time.monotonic() < self.down_until:
            return
        if self.pending >= MAX_PENDING_WRITES:
            self.counters.redis_write_skips += 1
            return
        self.pending += 1
        self.writes.append((redis_key(self.namespace, udp, key, ident),
                            encode_value(response, added, validity), ttl))
        if len(self.writes) == 1:       # gathered for a short while: one pipeline for many
            self.write_timer = self.loop.call_later(WRITE_GATHER, self._flush_writes)
        elif len(self.writes) >= WRITE_BATCH:
            self.write_timer.cancel()
            self._flush_writes()

    def _flush_writes(self) -> None:
        if self.pipelines >= MAX_PIPELINES or not self.writes:
            return               # sent when a pipeline in flight is done
        writes, self.writes = self.writes, []
        self.pipelines += 1
        self._spawn(self._pipeline(writes))

    async def _pipeline(self, writes: list[tuple[bytes, bytes, int]]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for rkey, value, ttl in writes:
                pipe.set(rkey, value, ex=ttl)
            await asyncio.wait_for(pipe.execute(), WRITE_TIMEOUT)
            self.counters.redis_writes += len(writes)
        except asyncio.TimeoutError:
            self.counters.redis_timeouts += 1
        except Exception as e:  # noqa: BLE001
            self.counters.redis_errors += 1
            self._failed(e)
        finally:
            self.pending -= len(writes)
            self.pipelines -= 1
            if self.writes:
                self.loop.call_soon(self._flush_writes)

    # ---- reachability
    def _failed(self, e: Exception) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
        if isinstance(e, (RedisConnectionError, RedisTimeoutError, OSError)):
            self.down_until = time.monotonic() + DOWN_HOLD
            if self.reachable:
                self.reachable = False
                self.log(f"The shared cache level at {self.url} is unreachable: {e}")

    def _back(self) -> None:
        if not self.reachable:
            self.reachable = True
            self.log(f"The shared cache level at {self.url} is reachable again")


def _finish(batch: _Batch, results: list[Found | None], log: Callable[[str], None]) -> None:
    """Hand each query its result; one failing continuation does not stop the others."""
    for (_, _, on_done), found in zip(batch.items, results):
        try:
            on_done(found)
        except Exception as e:  # noqa: BLE001 -- a bug: said, and the batch goes on
            log(f"Error after a shared cache lookup: {e}")
