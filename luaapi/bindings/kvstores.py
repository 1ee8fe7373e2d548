"""Key-value stores from Lua: newCDBKVStore, newLMDBKVStore, the KeyValueLookupKey* objects,
the stores' lookup/lookupSuffix/reload methods and the rules and actions that look them up."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from luaapi.bindings.objects import ComboAddressHandle, DNSNameHandle
from luaapi.bindings.rules import ActionHandle, RuleHandle
from luaapi.convert import as_bool, as_int, as_str, fail
from luaapi.errors import DnsdistError
from pydist import kvstore as K
from pydist.registry import CLIENT
from pydist.rules import kv as KV

KV_STORE = "St10shared_ptrI15KeyValueStoreE"
LOOKUP_KEY = "St10shared_ptrI17KeyValueLookupKeyE"


if TYPE_CHECKING:
    from pydist.lmdbstore import LMDBKVStore

class KVStoreHandle:
    """What newCDBKVStore() and newLMDBKVStore() return; no store in console client mode
    (dnsdist's null pointer: lookups give '' and reload() false)."""

    def __init__(self, store: K.CDBKVStore | LMDBKVStore | None) -> None:
        self.store = store

    def reload(self, *a: Any) -> bool:
        return False if self.store is None else self.store.reload()

    def lookup(self, key: Any, wire: Any = None, *a: Any) -> str:
        """By address (masked to /32 and /128), by name (wire form unless wire is false) or by
        the raw string."""
        if isinstance(key, ComboAddressHandle):
            keys = K.SourceIPKey(32, 128, False).address_keys(key.host, key.port)
        elif isinstance(key, DNSNameHandle):
            keys = K.QNameKey(_opt_bool(wire, True)).name_keys(key.name.key)
        else:
            keys = [as_str(key).encode("latin-1")]
        return self._first(keys)

    def lookupSuffix(self, name: Any, min_labels: Any = None, wire: Any = None,
                     *a: Any) -> str:
        if not isinstance(name, DNSNameHandle):
            raise fail(name, "DNSName")
        key = K.SuffixKey(_opt_int(min_labels, 0), _opt_bool(wire, True))
        return self._first(key.name_keys(name.name.key))

    def _first(self, keys: list[bytes]) -> str:
        for k in keys if self.store is not None else ():
            value = self.store.get(k)
            if value is not None:
                return value.decode("latin-1")
        return ""


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

    def lmdb(path: Any, db_name: Any, no_lock: Any = None, *a: Any) -> KVStoreHandle:
        if reg.mode == CLIENT:
            return KVStoreHandle(None)
        from pydist.lmdbstore import LMDBKVStore, LMDBOpenError   # lmdb only when used
        try:
            return KVStoreHandle(LMDBKVStore(as_str(path), as_str(db_name),
                                             _opt_bool(no_lock, False), reg.log))
        except LMDBOpenError as e:
            raise DnsdistError(str(e)) from None
    rt.fn("newLMDBKVStore", lmdb)

    rt.fn("KeyValueLookupKeyQName", lambda wire=None, *a: LookupKeyHandle(
        K.QNameKey(_opt_bool(wire, True))))
    rt.fn("KeyValueLookupKeySuffix", lambda n=None, wire=None, *a: LookupKeyHandle(
        K.SuffixKey(_opt_int(n, 0), _opt_bool(wire, True))))
    rt.fn("KeyValueLookupKeySourceIP", lambda v4=None, v6=None, port=None, *a: LookupKeyHandle(
        K.SourceIPKey(_opt_int(v4, 32), _opt_int(v6, 128), _opt_bool(port, False))))
    rt.fn("KeyValueLookupKeyTag", lambda tag, *a: LookupKeyHandle(K.TagKey(as_str(tag))))

    def parts(store: Any, key: Any) -> tuple[Any, Any]:
        if not isinstance(store, KVStoreHandle):
            raise fail(store, KV_STORE)
        if not isinstance(key, LookupKeyHandle):
            raise fail(key, LOOKUP_KEY)
        return store.store, key.key

    def rule(ranged: bool) -> Any:
        def make(store: Any, key: Any, *a: Any) -> RuleHandle:
            store, k = parts(store, key)
            return RuleHandle(KV.KeyValueStoreLookupRule(store, k, ranged))
        return make
    rt.fn("KeyValueStoreLookupRule", rule(False))
    rt.fn("KeyValueStoreRangeLookupRule", rule(True))

    def action(ranged: bool) -> Any:
        def make(store: Any, key: Any, tag: Any, *a: Any) -> ActionHandle:
            store, k = parts(store, key)
            return ActionHandle(KV.KeyValueStoreLookupAction(store, k, as_str(tag), ranged))
        return make
    rt.fn("KeyValueStoreLookupAction", action(False))
    rt.fn("KeyValueStoreRangeLookupAction", action(True))
