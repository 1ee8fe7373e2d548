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
time (beyond that they are skipped and counted).
"""
from __future__ import annotations

import asyncio
import struct
import time
from typing import Any, Callable

from pydist.dns.ttl import ttl_offsets

_VALUE_MAGIC = b"PDC1"
_TIMES = struct.Struct("!QQ")
_HEAD_SIZE = len(_VALUE_MAGIC) + _TIMES.size
MAX_PENDING_WRITES = 1000
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


class RedisLevel:
    """One cache's shared level: the client, the budget and the counters it feeds."""

    def __init__(self, url: str, timeout: float, namespace: bytes, counters: Any,
                 log: Callable[[str], None]) -> None:
        self.url = url
        self.timeout = timeout
        self.namespace = namespace
        self.counters = counters
        self.log = log
        self.client: Any = None
        self.down_until = 0.0
        self.reachable = True        # for one log line per outage, not one per query
        self.pending = 0
        self.tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        """Create the client (no connection yet: the first lookup makes one)."""
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        # a blocking pool: a burst of misses waits for a connection within the lookup
        # budget instead of failing with "Too many connections"; no retries, the budget is short
        pool = BlockingConnectionPool.from_url(
            self.url, max_connections=32, timeout=None, socket_connect_timeout=1.0,
            socket_timeout=1.0, retry=Retry(NoBackoff(), 0))
        self.client = Redis(connection_pool=pool)

    async def fetch(self, udp: bool, key: Any, ident: Any, now: float
                    ) -> tuple[bytes, int, int, tuple[int, ...]] | None:
        """(answer, added, validity, TTL offsets) for ``key``, or None (miss, timeout, error)."""
        c = self.counters
        if self.client is None or time.monotonic() < self.down_until:
            c.redis_skipped += 1
            return None
        try:
            raw = await asyncio.wait_for(self.client.get(redis_key(self.namespace, udp, key,
                                                                   ident)), self.timeout)
        except asyncio.TimeoutError:
            c.redis_timeouts += 1
            return None
        except Exception as e:  # noqa: BLE001 -- whatever Redis does, the query goes on
            self._failed(e)
            return None
        self._back()
        if raw is None:
            c.redis_misses += 1
            return None
        value = decode_value(raw)
        if value is None or not answers_key(value[0], key):
            c.redis_errors += 1
            return None
        response, added, validity = value
        if validity <= int(now):
            c.redis_misses += 1
            return None
        c.redis_hits += 1
        return response, added, validity, ttl_offsets(response)

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
        task = asyncio.get_running_loop().create_task(
            self._write(redis_key(self.namespace, udp, key, ident),
                        encode_value(response, added, validity), ttl))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _write(self, rkey: bytes, value: bytes, ttl: int) -> None:
        try:
            await asyncio.wait_for(self.client.set(rkey, value, ex=ttl), WRITE_TIMEOUT)
            self.counters.redis_writes += 1
        except asyncio.TimeoutError:
            self.counters.redis_timeouts += 1
        except Exception as e:  # noqa: BLE001
            self._failed(e)
        finally:
            self.pending -= 1

    def _failed(self, e: Exception) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        self.counters.redis_errors += 1
        if isinstance(e, (RedisConnectionError, OSError)):
            self.down_until = time.monotonic() + DOWN_HOLD
            if self.reachable:
                self.reachable = False
                self.log(f"The shared cache level at {self.url} is unreachable: {e}")

    def _back(self) -> None:
        if not self.reachable:
            self.reachable = True
            self.log(f"The shared cache level at {self.url} is reachable again")

    async def close(self) -> None:
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.aclose(), 1.0)
            except Exception:  # noqa: BLE001 -- closing at exit: nothing left to do
                pass
