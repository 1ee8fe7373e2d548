"""CDB key-value stores, pydist against real dnsdist 1.7.3: every lookup key kind on the same
database (what a key looks like: case, trailing dot, root, masks, tags), the lookup rule, a miss
leaving an empty tag, and a database replaced on disk picked up after refreshDelay."""
from __future__ import annotations

import os
from pathlib import Path

import dns.message
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.cdb import write_cdb
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import poll_until, run_cli, send_message

ITEMS = {
    b"\x07example\x03com\x00": b"192.0.2.1", b"example.com": b"192.0.2.2",
    b"example.com.": b"192.0.2.3", b"Example.COM": b"192.0.2.4", b"\x03com\x00": b"192.0.2.6",
    b"com": b"192.0.2.7", b"\x00": b"192.0.2.8", b"": b"192.0.2.9",
    bytes([127, 0, 0, 1]): b"192.0.2.11", bytes([127, 0, 0, 0]): b"192.0.2.12",
    b"tagvalue": b"192.0.2.13",
}
BLOCK = {b"\x07blocked\x04test\x00": b""}
KEYS = ["KeyValueLookupKeyQName()", "KeyValueLookupKeyQName(false)",
        "KeyValueLookupKeySuffix()", "KeyValueLookupKeySuffix(0, false)",
        "KeyValueLookupKeySuffix(3)", "KeyValueLookupKeySourceIP()",
        "KeyValueLookupKeySourceIP(24)", 'KeyValueLookupKeyTag("t")']
EXPECTED = [  # Example.COM. / sub.example.com. / x.org.
    ["192.0.2.1", "REFUSED", "REFUSED"], ["192.0.2.2", "REFUSED", "REFUSED"],
    ["192.0.2.1", "192.0.2.1", "REFUSED"], ["192.0.2.2", "192.0.2.2", "REFUSED"],
    ["REFUSED", "REFUSED", "REFUSED"], ["192.0.2.11"] * 3, ["192.0.2.12"] * 3,
    ["192.0.2.13"] * 3]
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer{address="{backend}"}
kvs = newCDBKVStore("@DB@", 1)
blocklist = newCDBKVStore("@DB@.block", 1)
addAction(KeyValueStoreLookupRule(blocklist, KeyValueLookupKeySuffix()), DropAction())
addAction(AllRule(), SetTagAction("t", "tagvalue"))
addAction(AllRule(), KeyValueStoreLookupAction(kvs, @KEY@, "dest"))
addAction(AndRule({QNameRule("empty.test."), TagRule("dest", "")}), RCodeAction(DNSRCode.NOTIMP))
function spoof(dq)
  local v = dq:getTag("dest")
  if v ~= "" then return DNSAction.Spoof, v end
  return DNSAction.Refused, ""
end
addAction(AllRule(), LuaAction(spoof))
"""


def _ask(where: tuple[str, int], name: str, timeout: float = 1.5) -> str:
    r = send_message(where, dns.message.make_query(name, "A"), timeout=timeout)
    if r is None:
        return "timeout"
    return ",".join(str(x) for rr in r.answer for x in rr) or dns.rcode.to_text(r.rcode())


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("index", range(len(KEYS)))
def test_lookup_keys_as_dnsdist(impl: str, index: int, start_proc: Starter, responder,
                                tmp_path: Path) -> None:
    db = tmp_path / "t.cdb"
    write_cdb(db, ITEMS)
    write_cdb(tmp_path / "t.cdb.block", BLOCK)
    conf = CONF.replace("@DB@", str(db)).replace("@KEY@", KEYS[index])
    proc = start_proc(impl, conf, {"backend": responder.address})
    seen = [_ask(proc.addr(), n) for n in ("Example.COM.", "sub.example.com.", "x.org.")]
    assert seen == EXPECTED[index]
    assert _ask(proc.addr(), "blocked.test.", 0.5) == "timeout"       # the lookup rule's drop
    assert _ask(proc.addr(), "sub.blocked.test.", 0.5) == "timeout"   # ... by suffix, empty value
    if "Tag" not in KEYS[index] and "SourceIP" not in KEYS[index]:
        assert _ask(proc.addr(), "empty.test.") == "NOTIMP"      # a miss sets the tag to ''


@pytest.mark.parametrize("impl", BOTH)
def test_replaced_database_is_picked_up(impl: str, start_proc: Starter, responder,
                                        tmp_path: Path) -> None:
    db = tmp_path / "t.cdb"
    write_cdb(db, {b"\x07example\x03com\x00": b"192.0.2.1"})
    write_cdb(tmp_path / "t.cdb.block", BLOCK)
    conf = CONF.replace("@DB@", str(db)).replace("@KEY@", "KeyValueLookupKeyQName()")
    proc = start_proc(impl, conf, {"backend": responder.address})
    assert _ask(proc.addr(), "example.com.") == "192.0.2.1"
    new = tmp_path / "new.cdb"
    write_cdb(new, {b"\x07example\x03com\x00": b"192.0.2.99"})
    st = os.stat(db)
    os.utime(new, (st.st_atime, st.st_mtime + 10))       # a newer modification time
    os.replace(new, db)
    poll_until(lambda: _ask(proc.addr(), "example.com.") == "192.0.2.99", timeout=8.0)


@pytest.mark.parametrize("impl", BOTH)
def test_console_client_does_not_open_the_store(impl: str, start_proc: Starter, responder,
                                                tmp_path: Path) -> None:
    """`-c`/`-e` read the config for the console key only: no missing-file error there (the
    server itself logs it, as dnsdist does)."""
    conf = console_prelude() + 'kvs = newCDBKVStore("/nonexistent/db.cdb", 60)\n'
    proc = start_proc(impl, conf, {"backend": responder.address})
    assert "Error while retrieving the last modification time of CDB database" in proc.output
    res = run_cli(impl, ["-C", str(proc.conf), "-e", "showVersion()"])
    assert res.returncode == 0 and "dnsdist" in res.stdout
    assert "CDB" not in res.stdout + res.stderr
