"""Key-value stores from Lua: newCDBKVStore, the KeyValueLookupKey* objects and the rules and
actions that look them up. LMDB stores are accepted and warned about (no LMDB reader here):
their rules never match and their actions are only kept."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.compat import ObjectHandle, unsupported
from luaapi.bindings.rules import ActionHandle, RuleHandle
from luaapi.convert import as_bool, as_int, as_str, fail
from pydist import kvstore as K
from pydist.registry import CLIENT
from pydist.rules import actions as A
from pydist.rules import kv as KV
from pydist.rules import selectors as S

KV_STORE = "St10shared_ptrI15KeyValueStoreE"
LOOKUP_KEY = "St10shared_ptrI17KeyValueLookupKeyE"


class KVStoreHandle:
    """What newCDBKVStore() returns (dnsdist's object has no Lua methods to speak of)."""

    def __init__(self, store: K.CDBKVStore) -> None:
        self.store = store

    def reload(self, *a: Any) -> None:
        self.store.next_check = 0.0


class LookupKeyHandle:
    def __init__(self, key: Any) -> None:
        self.key = key


def _opt_bool(v: Any, default: bool) -> bool:
    return default if v is None else as_bool(v)


def _opt_int(v: Any, default: int) -> int:
    return default if v is None else as_int(v)


def register(rt: Any) -> None:
    reg = rt.registry

    def cdb(path: Any, refresh: Any = None, *a: Any) -> KVStoreHandle:
        if reg.mode == CLIENT:      # `pydist -c` reads the config for the console only
            return KVStoreHandle(K.CDBKVStore.closed(as_str(path)))
        return KVStoreHandle(K.CDBKVStore(as_str(path), _opt_int(refresh, 0), reg.log))
    rt.fn("newCDBKVStore", cdb)
    unsupported(rt, "newLMDBKVStore", lambda p, d, *a: ObjectHandle("LMDBKVStore"))

    rt.fn("KeyValueLookupKeyQName", lambda wire=None, *a: LookupKeyHandle(
        K.QNameKey(_opt_bool(wire, True))))
    rt.fn("KeyValueLookupKeySuffix", lambda n=None, wire=None, *a: LookupKeyHandle(
        K.SuffixKey(_opt_int(n, 0), _opt_bool(wire, True))))
    rt.fn("KeyValueLookupKeySourceIP", lambda v4=None, v6=None, port=None, *a: LookupKeyHandle(
        K.SourceIPKey(_opt_int(v4, 32), _opt_int(v6, 128), _opt_bool(port, False))))
    rt.fn("KeyValueLookupKeyTag", lambda tag, *a: LookupKeyHandle(K.TagKey(as_str(tag))))

    def parts(store: Any, key: Any) -> tuple[Any, Any]:
        if not isinstance(store, (KVStoreHandle, ObjectHandle)):
            raise fail(store, KV_STORE)
        if not isinstance(key, LookupKeyHandle):
            raise fail(key, LOOKUP_KEY)
        return store, key.key

    def rule(ranged: bool) -> Any:
        def make(store: Any, key: Any, *a: Any) -> RuleHandle:
            store, k = parts(store, key)
            if isinstance(store, ObjectHandle):       # LMDB: kept, never matches (warned)
                prefix = "range-based lookup" if ranged else "lookup"
                return RuleHandle(S.NeverRule(f"{prefix} key-value store based on '{k}'"))
            return RuleHandle(KV.KeyValueStoreLookupRule(store.store, k, ranged))
        return make
    rt.fn("KeyValueStoreLookupRule", rule(False))
    rt.fn("KeyValueStoreRangeLookupRule", rule(True))

    def action(ranged: bool) -> Any:
        def make(store: Any, key: Any, tag: Any, *a: Any) -> ActionHandle:
            store, k = parts(store, key)
            if isinstance(store, ObjectHandle):
                text = str(KV.KeyValueStoreLookupAction(None, k, as_str(tag), ranged))
                return ActionHandle(A.ObjectAction(text))
            return ActionHandle(KV.KeyValueStoreLookupAction(store.store, k, as_str(tag),
                                                             ranged))
        return make
    rt.fn("KeyValueStoreLookupAction", action(False))
    rt.fn("KeyValueStoreRangeLookupAction", action(True))
