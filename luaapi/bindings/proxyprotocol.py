"""Incoming proxy protocol settings: setProxyProtocolACL, setProxyProtocolApplyACLToProxiedClients
and setProxyProtocolMaximumPayloadSize (config-only in dnsdist 1.7.3; the engine part is
pydist/frontend/proxied.py)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.frontends import _mask
from luaapi.bindings.misc import runtime_refused
from luaapi.convert import as_bool, as_int, is_table, table_to_list


def register(rt: Any) -> None:
    reg = rt.registry

    def set_acl(masks: Any, *a: Any) -> None:
        if runtime_refused(rt, "setProxyProtocolACL"):
            return
        items = [_mask(m) for m in (table_to_list(masks) if is_table(masks) else [masks])]
        reg.proxy_acl.clear()
        for m in items:
            reg.proxy_acl.add(m)
    rt.fn("setProxyProtocolACL", set_acl)

    def apply_acl(on: Any, *a: Any) -> None:
        if not runtime_refused(rt, "setProxyProtocolApplyACLToProxiedClients"):
            reg.settings.proxy_apply_acl = as_bool(on)
    rt.fn("setProxyProtocolApplyACLToProxiedClients", apply_acl)

    def max_payload(size: Any, *a: Any) -> None:
        """Never below 16: a smaller limit would refuse every header (dnsdist's floor)."""
        if not runtime_refused(rt, "setProxyProtocolMaximumPayloadSize"):
            reg.settings.proxy_max_payload = max(16, as_int(size))
    rt.fn("setProxyProtocolMaximumPayloadSize", max_payload)
