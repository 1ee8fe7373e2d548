"""Selectors pydist cannot match yet and actions it only keeps are
never silently ignored: serving warns about each, and the rest of the chain still works.
Lua FFI rules and actions are carried out now: no warning, and they act."""
from __future__ import annotations

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import query

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
addAction(SNIRule("secret.example"), DropAction())
addAction(AndRule({QTypeRule("A"), NotRule(HTTPPathRule("/dns-query"))}), NoneAction())
addAction(ProxyProtocolValueRule(2), DropAction())
addAction(AllRule(), SNMPTrapAction("trap"))
local ffi = require("ffi")
addAction(LuaFFIRule(function(dq) return ffi.C.dnsdist_ffi_dnsquestion_get_qtype(dq) == 16 end),
          LuaFFIAction(function(dq) return DNSAction.Nxdomain end))
addAction("blocked.test.", RCodeAction(DNSRCode.REFUSED))
"""
SUFFIX = " is accepted but not carried out by pydist yet"


def test_never_matching_selectors_are_named_at_startup(start_proc: Starter,
                                                        responder_factory: ResponderFactory) -> None:
    proc = start_proc("pydist", CONF, {"backend": responder_factory().address})
    assert "SNI == secret.example" not in proc.output     # SNIRule is carried out (DoT)
    assert "proxy protocol value" not in proc.output       # incoming proxy protocol is read
    assert "url path == /dns-query" not in proc.output    # HTTPPathRule too (DoH)
    for part in ("action 'send SNMP trap' in addAction()",):
        assert f"Warning: {part}{SUFFIX}" in proc.output.splitlines()
    assert "Lua FFI" not in proc.output
    r = query(proc.addr(), "www.example.")
    assert r is not None and r.answer          # neither the SNI nor the TLV rule fires here
    r = query(proc.addr(), "blocked.test.")
    assert r is not None and r.rcode() == 5
    r = query(proc.addr(), "www.example.", "TXT")   # the FFI rule and action
    assert r is not None and r.rcode() == 3
