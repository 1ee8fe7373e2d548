"""Batched UDP syscalls: `recvmmsg` and `sendmmsg` through ctypes, over buffers allocated once.

On a cache hit most of a UDP query's cost is the `recvfrom`/`sendto` pair, one syscall each
(ARCHITECTURE.md, rule 2): here one call reads up to a batch of datagrams and one call sends
every answer gathered over a round. Datagrams land in fixed slots of one anonymous mapping
(pages the kernel never writes cost no RSS) and come out as one `bytes` slice each; answers
and queries are sent by reference: the iovec points into the `bytes` object itself, so nothing
is copied or rebuilt to send it.

Where the calls are unavailable (not Linux, not CPython's `bytes` layout, `PYDIST_NO_MMSG`
set in the environment, a socket that is not a real one) `available()` is False and the
callers keep their `recvfrom`/`sendto` loop: the portable fallback.
"""
from __future__ import annotations

import array
import ctypes
import errno
import mmap
import os
import socket
import struct
from typing import Any, Callable

# the environment variable that forces the portable recvfrom/sendto path (tests, debugging)
DISABLE_ENV = "PYDIST_NO_MMSG"


class _IOVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.c_void_p), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


HDR_SIZE = ctypes.sizeof(_MMsgHdr)
IOV_SIZE = ctypes.sizeof(_IOVec)
NAME_SIZE = 28                     # sizeof(struct sockaddr_in6), room for either family
# where a bytes object's data starts from its id() (CPython's PyBytesObject: ob_sval)
BYTES_DATA = bytes.__basicsize__ - 1
_PTR = "Q"                        # the layout below is LP64's (checked in _probe)
_Q = 8
# in units of the array views used below (8-byte words for pointers and sizes, 4-byte for ints)
_NAME_Q = _MsgHdr.msg_name.offset // _Q
_NAMELEN_I = _MsgHdr.msg_namelen.offset // 4
_LEN_I = _MMsgHdr.msg_len.offset // 4
_HDR_Q = HDR_SIZE // _Q
_HDR_I = HDR_SIZE // 4

_libc: Any = None
_PORT = struct.Struct("!H")
_FLOW = struct.Struct("!I")
_SCOPE = struct.Struct("=I")
_FAMILY = struct.Struct("=H")


def _probe() -> Any:
    """libc with recvmmsg and sendmmsg, when this platform has them and the layout is the one
    this module writes; else None."""
    if ctypes.sizeof(ctypes.c_void_p) != 8 or HDR_SIZE % _Q or _MMsgHdr.msg_len.offset % 4:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        recv, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recv.restype = ctypes.c_int
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    send.restype = ctypes.c_int
    sample = b"pydist"
    if ctypes.cast(ctypes.c_char_p(sample), ctypes.c_void_p).value != id(sample) + BYTES_DATA:
        return None              # not CPython's bytes layout: no sending by reference
    return libc


def available() -> bool:
    """Whether the batched calls can be used (see the module docstring)."""
    global _libc
    if os.environ.get(DISABLE_ENV):
        return False
    if _libc is None:
        _libc = _probe() or False
    return bool(_libc)


def batchable(sock: Any) -> bool:
    """A real socket on which the batched calls can be used."""
    return isinstance(sock, socket.socket) and available()


class _Region:
    """Zeroed memory of `size` bytes from an anonymous mapping (untouched pages cost no RSS),
    its address for the kernel, and integer views for writing fields in bulk."""

    def __init__(self, size: int) -> None:
        self.mem = mmap.mmap(-1, max(size + -size % _Q, _Q))
        self._anchor = ctypes.c_char.from_buffer(self.mem)
        self.address = ctypes.addressof(self._anchor)
        view = memoryview(self.mem)
        self.q = view.cast(_PTR)
        self.i = view.cast("I")

    def close(self) -> None:
        self.q.release()
        self.i.release()
        del self._anchor
        self.mem.close()


def _headers(count: int, iov_address: int) -> _Region:
    """`count` mmsghdr, each pointing at its own iovec (one buffer per message)."""
    hdrs = _Region(count * HDR_SIZE)
    for k in range(count):
        h = _MMsgHdr.from_buffer(hdrs.mem, k * HDR_SIZE)
        h.msg_hdr.msg_iov = iov_address + k * IOV_SIZE
        h.msg_hdr.msg_iovlen = 1
        del h
    return hdrs


class Receiver:
    """recvmmsg into `count` slots of `slot_size` bytes (and the senders' addresses when
    `names`). After `recv()`, datagram k is `buf[k * slot_size:][:length]`, its sender's
    address `names[k * NAME_SIZE:][:namelen]` (a struct sockaddr, see `address`)."""

    def __init__(self, sock: socket.socket, count: int, slot_size: int, names: bool) -> None:
        self.fileno = sock.fileno    # asked per call: a closed socket's number may be reused
        self.count = count
        self.slot_size = slot_size
        self.data = _Region(count * slot_size)
        self.iovs = _Region(count * IOV_SIZE)
        self.hdrs = _headers(count, self.iovs.address)
        self.names = _Region(count * NAME_SIZE if names else 0)
        iq, hq, hi = self.iovs.q, self.hdrs.q, self.hdrs.i
        for k in range(count):
            iq[2 * k] = self.data.address + k * slot_size
            iq[2 * k + 1] = slot_size
            if names:
                hq[k * _HDR_Q + _NAME_Q] = self.names.address + k * NAME_SIZE
                hi[k * _HDR_I + _NAMELEN_I] = NAME_SIZE
        self.buf = self.data.mem
        self.namebuf = self.names.mem
        # the kernel writes each sender's address length; one family per socket, so one length
        self.namelen = 16 if sock.family == socket.AF_INET else NAME_SIZE
        self._lens = self.hdrs.i[_LEN_I::_HDR_I]
        self._call = _libc.recvmmsg
        self._hdr_address = self.hdrs.address

    def recv(self) -> list[int]:
        """Read what is waiting, up to `count` datagrams: their lengths (a length above the
        slot size cannot happen: a longer datagram is cut to it). [] when nothing waits.
        :raises OSError: on an error other than "nothing to read" or an interrupted call."""
        got = self._call(self.fileno(), self._hdr_address, self.count, 0, None)
        if got > 0:
            return self._lens[:got].tolist()
        if got == 0:
            return []
        err = ctypes.get_errno()
        if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
            return []
        raise OSError(err, os.strerror(err))

    def close(self) -> None:
        self._lens.release()
        for region in (self.data, self.iovs, self.hdrs, self.names):
            region.close()


def address(raw: bytes) -> Any:
    """A struct sockaddr as Python's socket module gives it: (host, port) for IPv4,
    (host, port, flowinfo, scope_id) for IPv6."""
    family = _FAMILY.unpack_from(raw)[0]
    port = _PORT.unpack_from(raw, 2)[0]
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    return (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, _FLOW.unpack_from(raw, 4)[0],
            _SCOPE.unpack_from(raw, 24)[0])


class AddressMemo(dict):
    """Raw sender addresses (struct sockaddr bytes) to the tuples the packet path uses, so a
    client seen before costs one dict lookup. Cleared when it grows past `limit` (a flood of
    source ports must not grow memory)."""

    def __init__(self, limit: int = 4096) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, raw: bytes) -> Any:
        if len(self) >= self.limit:
            self.clear()
        addr = self[raw] = address(raw)
        return addr


SendCall = Callable[[int, int, int, int], int]
SMALL_BATCH = 8     # up to this many messages, headers are filled one by one (cheaper than arrays)   # sendmmsg(fd, hdrs, count, flags)


class Sender:
    """sendmmsg of what `add` gathered: each message one `bytes` object sent by reference, to
    a raw struct sockaddr (`bytes` too) or, on a connected socket, to no name.

    `flush` sends in batches of `count`. A message the kernel refuses with another error
    than a full buffer is lost alone (as a failed sendto loses it): `on_error` gets the `tag`
    it was added with and the errno;
    a full buffer (EAGAIN) keeps the message and the ones after it, in order, for the next
    flush, and `flush` returns False: the owner waits for the socket to be writable."""

    def __init__(self, sock: socket.socket, count: int, names: bool,
                 on_error: Callable[[int, int], None] | None = None,
                 call: SendCall | None = None, wait_when_full: bool = True) -> None:
        self.fileno = sock.fileno    # asked per call: a closed socket's number may be reused
        self.count = count
        self.iovs = _Region(count * IOV_SIZE)
        self.hdrs = _headers(count, self.iovs.address)
        self.names = names
        self.datas: list[bytes] = []
        self.dests: list[bytes] = []
        self.tags: list[Any] = []
        self.on_error = on_error
        self.wait_when_full = wait_when_full
        self._call: SendCall = call if call is not None else _libc.sendmmsg
        self._hdr_address = self.hdrs.address
        self._bases = self.iovs.q[0::2]
        self._sizes = self.iovs.q[1::2]
        self._name_ptrs = self.hdrs.q[_NAME_Q::_HDR_Q]
        self._name_lens = self.hdrs.i[_NAMELEN_I::_HDR_I]

    def add(self, data: bytes, dest: bytes | None = None, tag: Any = None) -> None:
        """Queue one message (`data` must be `bytes`: it is sent from where it lies)."""
        self.datas.append(data)
        if self.names:
            self.dests.append(dest)  # type: ignore[arg-type]
        if self.on_error is not None:
            self.tags.append(tag)
        if len(self.datas) >= self.count:
            self.flush()

    def __len__(self) -> int:
        return len(self.datas)

    def flush(self) -> bool:
        """Send everything queued; False when the kernel's buffer is full (the rest kept)."""
        datas = self.datas
        while datas:
            done, full = self._send_batch(datas[:self.count], self.dests[:self.count])
            del datas[:done]
            if self.names:
                del self.dests[:done]
            if self.on_error is not None:
                del self.tags[:done]
            if full:
                return False
        return True

    def _send_batch(self, datas: list[bytes], dests: list[bytes]) -> tuple[int, bool]:
        """One batch: how many messages left the queue (sent, or lost alone to an error), and
        whether the kernel's buffer filled up before the others could go."""
        k = len(datas)
        off = BYTES_DATA
        if k <= SMALL_BATCH:    # a small round (several workers share the load): no arrays
            bases, sizes = self._bases, self._sizes
            for i, d in enumerate(datas):
                bases[i] = id(d) + off
                sizes[i] = len(d)
            if self.names:
                ptrs, lens = self._name_ptrs, self._name_lens
                for i, d in enumerate(dests):
                    ptrs[i] = id(d) + off
                    lens[i] = len(d)
        else:
            self._bases[:k] = array.array(_PTR, [id(d) + off for d in datas])
            self._sizes[:k] = array.array(_PTR, map(len, datas))
            if self.names:
                self._name_ptrs[:k] = array.array(_PTR, [id(d) + off for d in dests])
                self._name_lens[:k] = array.array("I", map(len, dests))
        lost = None if self.on_error is None else self._lost
        return send_all(self._call, self.fileno(), self._hdr_address, k, self.wait_when_full,
                        lost)

    def _lost(self, k: int, err: int) -> None:
        self.on_error(self.tags[k], err)   # type: ignore[misc]

    def close(self) -> None:
        for view in (self._bases, self._sizes, self._name_ptrs, self._name_lens):
            view.release()
        self.iovs.close()
        self.hdrs.close()


def send_all(call: SendCall, fd: int, hdr_address: int, k: int, wait_when_full: bool,
             lost: Callable[[int, int], None] | None) -> tuple[int, bool]:
    """sendmmsg of the `k` messages whose headers start at `hdr_address`, resumed after a
    partial send: how many left the queue (sent, or lost alone to an error: `lost(k, errno)`
    is told which), and whether a full kernel buffer stopped the others (`wait_when_full`;
    else that is an error per message too)."""
    done = 0
    while done < k:
        got = call(fd, hdr_address + done * HDR_SIZE, k - done, 0)
        if got > 0:
            done += got
            continue
        err = ctypes.get_errno() if got < 0 else errno.EAGAIN
        if err == errno.EINTR:
            continue
        if wait_when_full and err in (errno.EAGAIN, errno.EWOULDBLOCK):
            return done, True
        if lost is not None:
            lost(done, err)
        done += 1                      # this message alone is lost
    return done, False


class CopySender:
    """sendmmsg of answers copied into `count` slots of `slot_size` bytes allocated once, each
    to a raw struct sockaddr of `name_len` bytes (one family per socket).

    For answers whose bytes change once queued: the cache's ready-to-send records carry the
    latest query's ID, so a round's hits cannot go by reference. A copy into a slot costs
    less than a new bytes object per answer, and the slots' iovecs and name lengths are set
    once: a send computes only lengths and destinations. The UDP drain loop fills it inline:
    answer k at `buf[k * slot_size:]`, its length in `lens`, its destination (kept alive until
    sent) in `dests`. A full kernel buffer keeps the rest for the next `flush` (False)."""

    def __init__(self, sock: socket.socket, count: int, slot_size: int, name_len: int,
                 call: SendCall | None = None) -> None:
        self.fileno = sock.fileno
        self.count = count
        self.slot_size = slot_size
        self.data = _Region(count * slot_size)
        self.buf = self.data.mem
        self.iovs = _Region(count * IOV_SIZE)
        self.hdrs = _headers(count, self.iovs.address)
        iq, hi = self.iovs.q, self.hdrs.i
        for k in range(count):
            iq[2 * k] = self.data.address + k * slot_size
            hi[k * _HDR_I + _NAMELEN_I] = name_len
        self.lens: list[int] = []
        self.dests: list[bytes] = []
        self.sent = 0                  # of those queued: sent before a full buffer stopped
        self._call: SendCall = call if call is not None else _libc.sendmmsg
        self._hdr_address = self.hdrs.address
        self._sizes = self.iovs.q[1::2]
        self._name_ptrs = self.hdrs.q[_NAME_Q::_HDR_Q]

    def __len__(self) -> int:
        return len(self.lens) - self.sent

    def flush(self) -> bool:
        """Send what is queued; False when the kernel's buffer is full (the rest kept)."""
        lens, dests, start = self.lens, self.dests, self.sent
        k = len(lens)
        if start < k:
            if k - start <= SMALL_BATCH:     # a few answers: no arrays built
                sizes, ptrs = self._sizes, self._name_ptrs
                for i in range(start, k):
                    sizes[i] = lens[i]
                    ptrs[i] = id(dests[i]) + BYTES_DATA
            else:
                self._sizes[start:k] = array.array(_PTR, lens[start:k])
                self._name_ptrs[start:k] = array.array(
                    _PTR, [id(d) + BYTES_DATA for d in dests[start:k]])
            done, full = send_all(self._call, self.fileno(), self._hdr_address + start * HDR_SIZE,
                                  k - start, True, None)
            if full:
                self.sent = start + done
                return False
        lens.clear()     # in place: the drain loop holds their append methods
        dests.clear()
        self.sent = 0
        return True

    def close(self) -> None:
        self._sizes.release()
        self._name_ptrs.release()
        for region in (self.data, self.iovs, self.hdrs):
            region.close()
