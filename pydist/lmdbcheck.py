"""A structural check of an LMDB data file, read with plain reads before liblmdb maps it.

liblmdb trusts the file it maps: a meta page whose last page lies past the end of the file, a
page number or node offset pointing outside, or an overflow run longer than the file make it
read outside the mapping, and the process dies of SIGBUS or SIGSEGV (real dnsdist 1.7.3 does,
on such a file). pydist walks the pages a lookup can reach (the main database's tree and the
named database's tree) and checks every offset and page number against the file's bounds, so
a damaged file is refused with an error instead of killing the process.

Layout read here (liblmdb's on-disk format, 64-bit): a 16-byte page header (pgno, pad, flags,
lower/upper or the overflow page count), two meta pages (magic, version, the free and main
databases' MDB_db records, last page, transaction id), branch and leaf pages holding 2-byte
node offsets, each node a 8-byte header (data size or child page, flags, key size), the key,
then the data (or an overflow page number when F_BIGDATA).
"""
from __future__ import annotations

import struct

MAGIC = 0xBEEFC0DE
DATA_VERSION = 1
PAGEHDRSZ = 16
P_INVALID = 0xFFFFFFFFFFFFFFFF
P_BRANCH, P_LEAF, P_OVERFLOW, P_META, P_LEAF2 = 0x01, 0x02, 0x04, 0x08, 0x20
F_BIGDATA, F_SUBDATA, F_DUPDATA = 0x01, 0x02, 0x04
MAX_DEPTH = 64          # a B+tree of 4 kB pages never gets near this; deeper is a loop

_HDR = struct.Struct("<QHHHH")
_NODE = struct.Struct("<HHHH")
_DB = struct.Struct("<IHHQQQQQ")        # MDB_db: pad (page size in the free db), flags, depth,
_META_TAIL = struct.Struct("<QQ")       # branch/leaf/overflow pages, entries, root; then
_META_HEAD = struct.Struct("<IIQQ")     # magic, version, address, map size


class MetaError(Exception):
    """The meta pages are not a current LMDB environment's: liblmdb itself says why (it reads
    them with pread, not through the mapping, so letting it open the file is safe)."""


class DamagedFile(Exception):
    """A page or offset outside the file: liblmdb would read outside its mapping."""


class _File:
    def __init__(self, data: bytes, psize: int, last_pg: int) -> None:
        self.data, self.psize, self.last_pg = data, psize, last_pg
        self.seen: set[int] = set()

    def page(self, pgno: int) -> int:
        """The offset of page pgno, checked to lie inside the file and the environment."""
        if pgno > self.last_pg or (pgno + 1) * self.psize > len(self.data):
            raise DamagedFile(f"page {pgno} is outside the file")
        return pgno * self.psize


def _meta(data: bytes, off: int) -> tuple[int, int, int, bytes]:
    """(page size, last page, txnid, main MDB_db bytes) of the meta page at off."""
    if off + PAGEHDRSZ + 136 > len(data):
        raise MetaError("short meta page")
    _, _, flags, _, _ = _HDR.unpack_from(data, off)
    magic, version, _, _ = _META_HEAD.unpack_from(data, off + PAGEHDRSZ)
    if not flags & P_META or magic != MAGIC or version != DATA_VERSION:
        raise MetaError("not an LMDB meta page")
    psize = _DB.unpack_from(data, off + PAGEHDRSZ + 24)[0]
    main = data[off + PAGEHDRSZ + 72:off + PAGEHDRSZ + 120]
    last_pg, txnid = _META_TAIL.unpack_from(data, off + PAGEHDRSZ + 120)
    return psize, last_pg, txnid, main


def check_file(path: str, db_name: bytes) -> None:
    """Walks what a lookup of db_name can reach in the file at path.

    :raises OSError: the file cannot be read.
    :raises MetaError: not an LMDB file of this version (let liblmdb say it in its words).
    :raises DamagedFile: a page or offset outside the file.
    """
    with open(path, "rb") as f:
        data = f.read()
    psize0, last0, txn0, main0 = _meta(data, 0)
    if psize0 < 512 or psize0 > 65536 or psize0 & (psize0 - 1):
        raise MetaError("bad page size")
    psize1, last1, txn1, main1 = _meta(data, psize0)
    psize, last_pg, main = ((psize1, last1, main1) if txn1 > txn0 else (psize0, last0, main0))
    if psize != psize0:
        raise DamagedFile("the meta pages disagree on the page size")
    if (last_pg + 1) * psize > len(data):
        raise DamagedFile(f"the environment ends at page {last_pg}, past the end of the file")
    file = _File(data, psize, last_pg)
    named = _walk_db(file, main, db_name)
    if named is not None:
        _walk_db(file, named, None)


def _walk_db(file: _File, db: bytes, wanted: bytes | None) -> bytes | None:
    """Checks one database's tree; returns the MDB_db record stored under `wanted` (a named
    database's entry in the main database) when there is one."""
    if len(db) != _DB.size:
        raise DamagedFile("short database record")
    root = _DB.unpack(db)[7]
    if root == P_INVALID:
        return None
    found: list[bytes] = []
    _walk_page(file, root, 0, wanted, found)
    return found[0] if found else None


def _walk_page(file: _File, pgno: int, depth: int, wanted: bytes | None,
               found: list[bytes]) -> None:
    if depth > MAX_DEPTH or pgno in file.seen:
        raise DamagedFile(f"page {pgno} is reached twice")
    file.seen.add(pgno)
    data, psize = file.data, file.psize
    off = file.page(pgno)
    own, _, flags, lower, upper = _HDR.unpack_from(data, off)
    if own != pgno or not flags & (P_BRANCH | P_LEAF) or flags & (P_OVERFLOW | P_META):
        raise DamagedFile(f"page {pgno} is not a branch or leaf page")
    if flags & P_LEAF2:         # fixed-size keys packed after the header: bounds only
        if not PAGEHDRSZ <= lower <= psize:
            raise DamagedFile(f"page {pgno}: bad bounds")
        return
    if not PAGEHDRSZ <= lower <= upper <= psize or (lower - PAGEHDRSZ) & 1:
        raise DamagedFile(f"page {pgno}: bad bounds")
    nkeys = (lower - PAGEHDRSZ) >> 1
    ptrs = struct.unpack_from(f"<{nkeys}H", data, off + PAGEHDRSZ)
    for ptr in ptrs:
        if ptr < upper or ptr + _NODE.size > psize:
            raise DamagedFile(f"page {pgno}: node outside the page")
        lo, hi, nflags, ksize = _NODE.unpack_from(data, off + ptr)
        kend = ptr + _NODE.size + ksize
        if kend > psize:
            raise DamagedFile(f"page {pgno}: key outside the page")
        if flags & P_BRANCH:
            _walk_page(file, lo | hi << 16 | nflags << 32, depth + 1, wanted, found)
            continue
        dsize = lo | hi << 16
        if nflags & F_BIGDATA:
            if kend + 8 > psize:
                raise DamagedFile(f"page {pgno}: node outside the page")
            _check_overflow(file, struct.unpack_from("<Q", data, off + kend)[0], dsize)
            continue
        if kend + dsize > psize:
            raise DamagedFile(f"page {pgno}: data outside the page")
        value = data[off + kend:off + kend + dsize]
        if nflags & F_SUBDATA:      # a named database's record, or a duplicate-sorted sub-tree
            if wanted is not None and data[off + ptr + 8:off + kend] == wanted:
                found.append(value)
            elif nflags & F_DUPDATA:
                _walk_db(file, value, None)


def _check_overflow(file: _File, pgno: int, dsize: int) -> None:
    off = file.page(pgno)
    _, _, flags, npages = struct.unpack_from("<QHHI", file.data, off)
    if not flags & P_OVERFLOW or npages < 1 or PAGEHDRSZ + dsize > npages * file.psize:
        raise DamagedFile(f"page {pgno} is not the overflow run its node says")
    file.page(pgno + npages - 1)

