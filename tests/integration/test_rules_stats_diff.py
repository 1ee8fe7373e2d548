"""The counters rules move, pydist against real dnsdist 1.7.3 after the same queries over UDP and
TCP: rule-* for each verdict (static and Lua), self-answered, dyn-blocked, cache hits and misses,
responses and frontend rcodes (counted before response rules), latency samples (none for
dropped answers)."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import ResponderFactory, Starter, available_impls
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query

CONF = console_prelude(cache=100) + """\
addAction("drop.test.", DropAction())
addAction("nx.rules.test.", RCodeAction(DNSRCode.NXDOMAIN))
addAction("ref.test.", RCodeAction(DNSRCode.REFUSED))
addAction("sf.test.", RCodeAction(DNSRCode.SERVFAIL))
addAction("tc.test.", TCAction())
addAction("spoof.test.", SpoofAction("192.0.2.1"))
addAction("lsf.test.", LuaAction(function(dq) return DNSAction.ServFail end))
addAction("lnx.test.", LuaAction(function(dq) return DNSAction.Nxdomain end))
addAction("lref.test.", LuaAction(function(dq) return DNSAction.Refused end))
addAction("ltc.test.", LuaAction(function(dq) return DNSAction.Truncate end))
addAction("ldrop.test.", LuaAction(function(dq) return DNSAction.Drop end))
addResponseAction("rsf.test.", LuaResponseAction(function(dr) return DNSResponseAction.ServFail end))
addResponseAction("rdrop.test.", DropResponseAction())
addDynBlockSMT({"dyn.test."}, "x", 60, DNSAction.Nxdomain)
addDynBlockSMT({"dyndrop.test."}, "x", 60)
"""
NAMES = ("drop nx.rules ref sf tc spoof lsf lnx lref ltc ldrop rsf rdrop dyn dyndrop ok ok "
         "x.nx").split()
VOLATILE = ("latency-avg", "latency0", "latency1", "latency5", "latency10", "latency-slow",
            "latency-sum", "cpu-", "real-memory", "special-memory", "uptime", "fd-usage", "udp",
            "tcp-listen-overflows", "security-status")


@pytest.mark.skipif(len(available_impls()) < 2, reason="dnsdist not installed")
def test_rule_counters_as_dnsdist(start_proc: Starter,
                                  responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    counters: dict[str, dict[str, str]] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, CONF, {"backend": backend.address})
        for tcp in (False, True):
            for name in NAMES:
                query(proc.addr(), f"{name}.test.", tcp=tcp, timeout=0.5)
        out = subprocess.run(["dnsdist", "-C", str(proc.conf), "-e", "dumpStats()"],
                             capture_output=True, text=True, timeout=10).stdout
        proc.stop()
        counters[impl] = {k: v for k, v in re.findall(r"([a-z0-9-]+)\s+([0-9.]+)", out)
                          if not k.startswith(VOLATILE)}
    assert counters["pydist"] == counters["dnsdist"]
    assert counters["pydist"]["rule-drop"] == "4" and counters["pydist"]["dyn-blocked"] == "4"
