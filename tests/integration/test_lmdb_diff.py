"""LMDB key-value stores, pydist against real dnsdist 1.7.3 on the same database: exact lookups
(every lookup key kind), range lookups (the stored key is a range's last value, the data starts
with its first; the tag keeps a value read for a key before its range, as dnsdist's does),
lookups committed by a writer while serving, the stores' Lua methods, and the errors of a
missing file, a missing named database and a file that is not LMDB's."""
from __future__ import annotations

from pathlib import Path

import dns.message
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.cdb import write_cdb
from tests.helpers.lmdb import write_lmdb
from tests.helpers.pydist_proc import poll_until, run_cli, send_message

ITEMS = {
    b"\x07example\x03com\x00": b"exact-wire", b"example.com": b"exact-text",
    b"\x03com\x00": b"suffix-wire", bytes([127, 0, 0, 1]): b"ip-32",
    bytes([127, 0, 0, 0]): b"ip-24", b"tagvalue": b"by-tag",
    # ranges: key = last, data = first + anything
    b"bbbb": b"aaaa-x", b"dddd": b"dzzz-y", b"ffff": b"e",
    bytes([127, 0, 0, 255]): bytes([127, 0, 0, 0]) + b"-lo",
}
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer{address="{backend}"}
kvs = newLMDBKVStore("@DB@", "dnsdist"@NOLOCK@)
addAction(AllRule(), SetTagAction("t", "tagvalue"))
function firstlabel(dq)
  dq:setTag("k", (dq.qname:toString():match("^([^.]*)")))
  return DNSAction.None, ""
end
addAction(AllRule(), LuaAction(firstlabel))
addAction(AllRule(), KeyValueStoreLookupAction(kvs, @KEY@, "exact"))
addAction(KeyValueStoreLookupRule(kvs, @KEY@), SetTagAction("em", "1"))
addAction(AllRule(), KeyValueStoreRangeLookupAction(kvs, KeyValueLookupKeyTag("k"), "range"))
addAction(KeyValueStoreRangeLookupRule(kvs, KeyValueLookupKeyTag("k")), SetTagAction("rm", "1"))
addAction(AllRule(), KeyValueStoreRangeLookupAction(kvs, KeyValueLookupKeySourceIP(), "src"))
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
function report(dq)
  local out = {}
  for _, t in ipairs({"exact", "em", "range", "rm", "src"}) do
    table.insert(out, "x" .. hex(dq:getTag(t) or ""))
  end
  return DNSAction.Spoof, table.concat(out, ".") .. ".out."
end
addAction(AllRule(), LuaAction(report))
"""
KEYS = ["KeyValueLookupKeyQName()", "KeyValueLookupKeyQName(false)",
        "KeyValueLookupKeySuffix()", "KeyValueLookupKeySuffix(2, false)",
        "KeyValueLookupKeySourceIP(24)", 'KeyValueLookupKeyTag("t")']
NAMES = ["Example.COM.", "sub.example.com.", "b000.x.", "bbbb.x.", "cccc.x.", "zzzz.x.",
         "bb.x.", "eeee.x.", "fa00.x.", "aaaa.x.", "ffff.x."]


def _ask(where: tuple[str, int], name: str) -> str:
    r = send_message(where, dns.message.make_query(name, "A"), timeout=2.0)
    if r is None:
        return "timeout"
    return ",".join(str(x) for rr in r.answer for x in rr) or dns.rcode.to_text(r.rcode())


def _conf(db: Path, key: str, nolock: bool = False) -> str:
    return (CONF.replace("@DB@", str(db)).replace("@KEY@", key)
            .replace("@NOLOCK@", ", true" if nolock else ""))


def _answers(impl: str, start_proc: Starter, responder, db: Path, key: str,
             nolock: bool = False) -> list[str]:
    proc = start_proc(impl, _conf(db, key, nolock), {"backend": responder.address})
    return [_ask(proc.addr(), n) for n in NAMES]


@pytest.mark.parametrize("index", range(len(KEYS)))
def test_lookups_as_dnsdist(index: int, start_proc: Starter, responder, tmp_path: Path) -> None:
    db = tmp_path / "kv.lmdb"
    write_lmdb(db, "dnsdist", ITEMS)
    seen = {impl: _answers(impl, start_proc, responder, db, KEYS[index], nolock=index == 0)
            for impl in ("dnsdist", "pydist")}
    assert seen["pydist"] == seen["dnsdist"]
    assert "timeout" not in seen["pydist"]


def test_range_values_kept_as_dnsdist_keeps_them(start_proc: Starter, responder,
                                                  tmp_path: Path) -> None:
    """What the range tags hold, spelled out (cccc: before dddd's range starting at dzzz, yet
    its data is kept; fa00: data shorter than the key)."""
    db = tmp_path / "kv.lmdb"
    write_lmdb(db, "dnsdist", ITEMS)
    seen = _answers("pydist", start_proc, responder, db, KEYS[0])
    hexed = {n: a.split(".")[2:4] for n, a in zip(NAMES, seen)}
    assert hexed["b000.x."] == ["x" + b"aaaa-x".hex(), "x31"]
    assert hexed["cccc.x."] == ["x" + b"dzzz-y".hex(), "x"]
    assert hexed["fa00.x."] == ["x" + b"e".hex(), "x"]
    assert hexed["bb.x."] == ["x", "x"]                 # a stored key of another length
    # 127.0.0.1: the first key at or after it is 127.0.0.1's own, and "ip-3" <= 127.0.0.1
    assert seen[0].split(".")[4] == "x" + b"ip-32".hex()


@pytest.mark.parametrize("impl", BOTH)
def test_writes_seen_at_once(impl: str, start_proc: Starter, responder, tmp_path: Path) -> None:
    """Each lookup is its own read transaction: a commit by a writer shows on the next query."""
    db = tmp_path / "kv.lmdb"
    write_lmdb(db, "dnsdist", {b"other": b"x"})
    proc = start_proc(impl, _conf(db, KEYS[0]), {"backend": responder.address})
    before = _ask(proc.addr(), "example.com.")
    assert before.startswith("x.x.")                    # no exact value, no match
    write_lmdb(db, "dnsdist", {b"\x07example\x03com\x00": b"new"})
    poll_until(lambda: _ask(proc.addr(), "example.com.").startswith(
        "x" + b"new".hex() + ".x31."), timeout=5.0)


LUA_METHODS = """setSecurityPollSuffix("")
kvs = @STORE@
print("[" .. kvs:lookup("example.com") .. "]")
print("[" .. kvs:lookup(newDNSName("Example.com")) .. "]")
print("[" .. kvs:lookup(newDNSName("example.com"), false) .. "]")
print("[" .. kvs:lookup(newCA("127.0.0.1:53")) .. "]")
print("[" .. kvs:lookup("absent") .. "]")
print("[" .. kvs:lookupSuffix(newDNSName("a.b.example.com")) .. "]")
print("[" .. kvs:lookupSuffix(newDNSName("a.b.example.com"), 3, false) .. "]")
print("[" .. kvs:lookupSuffix(newDNSName("a.b.example.com"), 2, false) .. "]")
print(kvs:reload())
"""


@pytest.mark.parametrize("kind", ["lmdb", "cdb"])
def test_store_methods_as_dnsdist(kind: str, tmp_path: Path) -> None:
    """lookup, lookupSuffix and reload() (false for LMDB, a forced re-read for CDB)."""
    db = tmp_path / f"kv.{kind}"
    if kind == "lmdb":
        write_lmdb(db, "dnsdist", ITEMS)
        store = f'newLMDBKVStore("{db}", "dnsdist")'
    else:
        write_cdb(db, ITEMS)
        store = f'newCDBKVStore("{db}", 0)'
    conf = tmp_path / "m.conf"
    conf.write_text(LUA_METHODS.replace("@STORE@", store))
    out = {impl: run_cli(impl, ["--check-config", "-C", str(conf)]) for impl in
           ("dnsdist", "pydist")}
    assert out["pydist"].returncode == out["dnsdist"].returncode == 0
    assert out["pydist"].stdout == out["dnsdist"].stdout
    assert "[exact-wire]" in out["pydist"].stdout
    assert ("\nfalse\n" if kind == "lmdb" else "\ntrue\n") in out["pydist"].stdout


@pytest.mark.parametrize("case", ["missing", "nodb", "notlmdb", "empty", "args"])
def test_open_errors_as_dnsdist(case: str, tmp_path: Path) -> None:
    db = tmp_path / "kv.lmdb"
    write_lmdb(db, "dnsdist", ITEMS)
    bad = tmp_path / "bad.lmdb"
    bad.write_bytes(b"not an LMDB file at all" * 400)
    (tmp_path / "empty.lmdb").write_bytes(b"")
    call = {"missing": f'"{tmp_path}/none.lmdb", "dnsdist"', "nodb": f'"{db}", "other"',
            "notlmdb": f'"{bad}", "dnsdist"', "empty": f'"{tmp_path}/empty.lmdb", "dnsdist"',
            "args": f'"{db}"'}[case]
    conf = tmp_path / "e.conf"
    conf.write_text(f'setSecurityPollSuffix("")\nkvs = newLMDBKVStore({call})\n')
    out = {impl: run_cli(impl, ["--check-config", "-C", str(conf)]) for impl in
           ("dnsdist", "pydist")}
    assert out["pydist"].returncode == out["dnsdist"].returncode == 1
    assert out["pydist"].stdout + out["pydist"].stderr == \
        out["dnsdist"].stdout + out["dnsdist"].stderr


@pytest.mark.parametrize("impl", BOTH)
def test_console_client_does_not_open_the_store(impl: str, start_proc: Starter, responder,
                                                tmp_path: Path) -> None:
    """`-e` reads the config for the console only: a store is not opened there (dnsdist gives
    a null store), so a file the client cannot read is no error."""
    from tests.helpers.conf import console_prelude
    db = tmp_path / "kv.lmdb"
    write_lmdb(db, "dnsdist", ITEMS)
    conf = console_prelude() + f'kvs = newLMDBKVStore("{db}", "dnsdist")\n'
    proc = start_proc(impl, conf, {"backend": responder.address})
    db.unlink()
    res = run_cli(impl, ["-C", str(proc.conf), "-e", 'print(kvs:lookup("example.com"))'])
    assert res.returncode == 0 and "Unable" not in res.stdout + res.stderr
