"""The CDB reader against the test writer: every key found with its value, absent keys not,
including keys that share a hash table and empty keys or values."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pydist.kvstore import CDBFile
from tests.helpers.cdb import write_cdb


@settings(max_examples=60, deadline=None)
@given(items=st.dictionaries(st.binary(max_size=40), st.binary(max_size=40), max_size=60),
       probe=st.binary(max_size=40))
def test_cdb_round_trip(tmp_path_factory, items: dict[bytes, bytes], probe: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cdb")) / "t.cdb"
    write_cdb(path, items)
    db = CDBFile(path.read_bytes())
    for key, value in items.items():
        assert db.get(key) == value
    assert db.get(probe) == items.get(probe)
