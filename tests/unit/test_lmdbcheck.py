"""A damaged LMDB file never kills pydist: the structural check refuses what would make liblmdb
read outside its mapping (real dnsdist 1.7.3 dies of SIGBUS on such files), and what liblmdb
itself detects becomes an error or a failed lookup."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pydist.lmdbstore import LMDBKVStore, LMDBOpenError
from tests.helpers.lmdb import write_lmdb

ITEMS = {b"bbbb": b"aaaa-x", b"dddd": b"dzzz-y", b"\x07example\x03com\x00": b"v" * 3000,
         **{b"k%04d" % i: b"value %d" % i for i in range(300)}}


def _db(tmp_path: Path) -> Path:
    db = tmp_path / "kv.lmdb"
    write_lmdb(db, "dnsdist", ITEMS)
    return db


def _open(db: Path) -> LMDBKVStore:
    return LMDBKVStore(str(db), "dnsdist", True, lambda line: None)


def test_sound_file_reads(tmp_path: Path) -> None:
    store = _open(_db(tmp_path))
    assert store.get(b"k0042") == b"value 42"
    assert store.get(b"\x07example\x03com\x00") == b"v" * 3000      # an overflow page
    assert store.get_range(b"b000") == (True, b"aaaa-x")


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    db = _db(tmp_path)
    data = db.read_bytes()
    db.write_bytes(data[:len(data) - 4096])
    with pytest.raises(LMDBOpenError, match="MDB_CORRUPTED"):
        _open(db)


@pytest.mark.parametrize("field,value", [("root", 10_000), ("last", 10_000)])
def test_pages_past_the_end_are_refused(tmp_path: Path, field: str, value: int) -> None:
    """The main database's root, or the environment's last page, past the end of the file
    (both meta pages changed, so whichever liblmdb picks is damaged)."""
    db = _db(tmp_path)
    data = bytearray(db.read_bytes())
    psize = struct.unpack_from("<I", data, 16 + 24)[0]
    for meta in (0, psize):
        off = meta + 16 + (72 + 40 if field == "root" else 120)
        struct.pack_into("<Q", data, off, value)
    db.write_bytes(bytes(data))
    with pytest.raises(LMDBOpenError, match="MDB_CORRUPTED"):
        _open(db)


FUZZ = r'''
import random, sys
from pydist.lmdbstore import LMDBKVStore, LMDBOpenError
src, out, seed, rounds = open(sys.argv[1], "rb").read(), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
used = [p for p in range(len(src) // 4096) if any(src[p * 4096:(p + 1) * 4096])]
refused = 0
for _ in range(rounds):
    b = bytearray(src)
    for _ in range(rnd.randint(1, 8)):
        page = rnd.choice(used)
        b[page * 4096 + rnd.choice([rnd.randrange(64), rnd.randrange(4096)])] = rnd.randrange(256)
    open(out, "wb").write(b)
    try:
        s = LMDBKVStore(out, "dnsdist", True, lambda line: None)
    except LMDBOpenError:
        refused += 1
        continue
    for k in (b"bbbb", b"cccc", b"k0100", b"k0299", b"zzzz", b"\x07example\x03com\x00"):
        s.get(k)
        s.get_range(k)
    s.env.close()
print(refused)
'''


def test_random_damage_never_crashes(tmp_path: Path) -> None:
    """Bytes changed anywhere in the pages in use, 400 times: each file is refused or read (a
    lookup may fail); the process survives. Run in a child so a crash is a failure, not the end
    of the test run."""
    db = _db(tmp_path)
    res = subprocess.run([sys.executable, "-c", FUZZ, str(db), str(tmp_path / "f.lmdb"), "7",
                          "400"], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
    assert 0 < int(res.stdout) < 400
