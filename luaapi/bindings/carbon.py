"""carbonServer(addr[, ourName[, interval[, namespace[, instance]]]]): Graphite export, as
dnsdist 1.7.3 (default port 2003); works at runtime too, taking effect at once."""
from __future__ import annotations

from typing import Any

from luaapi.convert import as_int, as_str
from luaapi.errors import PdnsError
from pydist.dns.netmask import AddressError, parse_address


def register(rt: Any) -> None:
    reg = rt.registry

    def carbon_server(addr: Any, name: Any = None, interval: Any = None, namespace: Any = None,
                      instance: Any = None, *a: Any) -> None:
        try:
            host, port = parse_address(as_str(addr), 2003)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        from pydist.carbon import CarbonServer   # loaded only by configs that export to Carbon
        reg.carbon_servers.append(CarbonServer(
            host, port, "" if name is None else as_str(name),
            30 if interval is None else as_int(interval),
            "dnsdist" if namespace is None else as_str(namespace),
            "main" if instance is None else as_str(instance)))
        reg.declare_carbon()
    rt.fn("carbonServer", carbon_server)
