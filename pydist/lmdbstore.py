"""newLMDBKVStore(file, dbName[, noLock]): lookups in a named database of an LMDB file, as
dnsdist 1.7.3 does them (read-only environment without a sub-directory, one read transaction per
lookup, so changes committed by a writer are seen at once).

The file is checked by pydist/lmdbcheck.py before liblmdb maps it: a damaged file is refused
with an error where dnsdist would die of SIGBUS. A writer using LMDB keeps the file sound; a
tool that rewrites the file in place (not through LMDB, not by renaming a new file over it)
while pydist has it open is outside what can be guarded.
"""
from __future__ import annotations

from collections.abc import Callable

import lmdb

from pydist import lmdbcheck

MAP_SIZE = 50 << 20     # dnsdist opens with a 50 MB map; liblmdb grows it to the file's own
MAX_DBS = 128


class LMDBOpenError(Exception):
    """The store cannot be opened: dnsdist's text (a Lua error at configuration time)."""


class LMDBKVStore:
    def __init__(self, path: str, db_name: str, no_lock: bool,
                 log: Callable[[str], None]) -> None:
        self.path, self.db_name, self.log = path, db_name, log
        name = db_name.encode("latin-1")
        meta_error = None
        try:
            lmdbcheck.check_file(path, name)
        except OSError as e:
            raise LMDBOpenError(f"Unable to open database file {path}: {e.strerror}") from None
        except lmdbcheck.DamagedFile as e:
            raise _corrupted(path, str(e)) from None
        except lmdbcheck.MetaError as e:
            meta_error = str(e)                 # liblmdb says why in its words, just below
        try:
            self.env = lmdb.open(path, subdir=False, readonly=True, lock=not no_lock,
                                 map_size=MAP_SIZE, max_dbs=MAX_DBS, readahead=False)
        except lmdb.Error as e:
            raise LMDBOpenError(f"Unable to open database file {path}: "
                                f"{_reason(e, path)}") from None
        if meta_error is not None:  # liblmdb took meta pages pydist did not: not read further
            self.env.close()
            raise _corrupted(path, meta_error)
        try:
            self.dbi = self.env.open_db(name, create=False)
        except lmdb.Error as e:
            self.env.close()
            raise LMDBOpenError(f"Unable to open named database: {_reason(e, 'mdb_dbi_open')}"
                                ) from None

    def get(self, key: bytes) -> bytes | None:
        """The key's value (getValue and keyExists: one read transaction each)."""
        try:
            with self.env.begin(db=self.dbi) as txn:
                return txn.get(key)
        except lmdb.Error as e:
            self.log(f"Error while looking up key '{key.decode('latin-1')}' from LMDB file "
                     f"'{self.path}', database '{self.db_name}': {e}")
            return None

    def get_range(self, key: bytes) -> tuple[bool, bytes | None]:
        """getRangeValue: the first stored key at or after `key` is the last of a range whose
        first is the start of its value (network byte order addresses, typically). Returns
        (in range, value read): as dnsdist, the value is read before the range's start is
        compared, and the action keeps it even when the key falls before that start."""
        try:
            with self.env.begin(db=self.dbi) as txn:
                cursor = txn.cursor()
                if not cursor.set_range(key):
                    return False, None
                last = cursor.key()
                if len(last) != len(key) or key > last:
                    return False, None
                value = cursor.value()
        except lmdb.Error as e:
            self.log(f"Error while looking up a range from LMDB file '{self.path}', database "
                     f"'{self.db_name}': {e}")
            return False, None
        if len(value) < len(key):
            return False, value
        return key >= value[:len(key)], value

    def reload(self) -> bool:
        """LMDB stores see writes at once: dnsdist's reload() does nothing and says false."""
        return False


def _corrupted(path: str, why: str) -> LMDBOpenError:
    return LMDBOpenError(f"Unable to open database file {path}: MDB_CORRUPTED: Located page "
                         f"was wrong type ({why})")


def _reason(e: lmdb.Error, prefix: str) -> str:
    """py-lmdb's message without the path or call it starts with, as liblmdb's text."""
    text = str(e)
    return text[len(prefix) + 2:] if text.startswith(prefix + ": ") else text
