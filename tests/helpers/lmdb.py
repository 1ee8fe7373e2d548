"""An LMDB writer for test databases, as dnsdist's users (and its own regression tests) write
them: one data file without a sub-directory, the values in a named database."""
from __future__ import annotations

from pathlib import Path

import lmdb


def write_lmdb(path: Path, db_name: str, items: dict[bytes, bytes]) -> None:
    env = lmdb.open(str(path), map_size=0x1000000, subdir=False, max_dbs=2)
    try:
        db = env.open_db(db_name.encode())
        with env.begin(db=db, write=True) as txn:
            for key, value in items.items():
                txn.put(key, value)
    finally:
        env.close()
