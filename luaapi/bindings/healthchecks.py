"""newServer{checkFunction=f}: the Lua function handed to the engine as a plain callable.

dnsdist 1.7.3 calls f(qname, qtype, qclass, dh) before each health check; f returns the
name, type and class to ask for, and may change the header's flags through dh (setCD, ...).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from luaapi.bindings.objects import DNSNameHandle, to_dnsname
from luaapi.bindings.rules import HeaderHandle
from luaapi.convert import as_int
from pydist.dnsquestion import HeaderFlags
from pydist.rules.names import DNSName, labels_from_wire

CheckFunction = Callable[[bytes, int, int, bytearray], tuple[bytes, int, int]]


class CheckHeader(HeaderFlags):
    """The 12 header bytes of a health query, with the flag accessors HeaderHandle expects."""

    __slots__ = ("data",)

    def __init__(self, data: bytearray) -> None:
        self.data = data


def check_function(func: Any) -> CheckFunction:
    """Wrap a Lua checkFunction; its errors propagate and fail the check (as in dnsdist)."""
    def call(qname: bytes, qtype: int, qclass: int, header: bytearray) -> tuple[bytes, int, int]:
        name = DNSNameHandle(DNSName(labels_from_wire(qname, 0)))
        res = func(name, qtype, qclass, HeaderHandle(CheckHeader(header)))
        if not isinstance(res, tuple) or len(res) < 3:
            raise ValueError("checkFunction must return a name, a type and a class")
        return to_dnsname(res[0]).to_wire(), as_int(res[1]), as_int(res[2])
    return call
