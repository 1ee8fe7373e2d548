"""The dnsdist way of asking for N threads, several addLocal of one address with
reusePort=true, on real dnsdist 1.7.3 and on pydist (which gives each its own worker): the
same listeners shown, the same counters summed over the same traffic."""
from __future__ import annotations

import re

from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query, run_cli

CONF = console_prelude() + """
addLocal("127.0.0.1:{port2}", {reusePort=true})
addLocal("127.0.0.1:{port2}", {reusePort=true})
addAction(QNameRule("refused.example."), RCodeAction(DNSRCode.REFUSED))
"""


def _console(p, cmd: str) -> str:
    return run_cli(p.impl, ["-C", str(p.conf), "-e", cmd]).stdout


def _observed(start_proc, impl: str, backend: str) -> dict[str, object]:
    p = start_proc(impl, CONF, {"backend": backend})
    port2 = p.values["port2"]
    for i in range(30):
        assert query(p.addr("port2"), f"n{i}.example.", timeout=3) is not None
    assert query(p.addr("port2"), "refused.example.", timeout=3) is not None
    stats = dict(re.findall(r"(\S+)\s*\t\s*(\S+)", _console(p, "dumpStats()")))
    rows = [line.split() for line in _console(p, "showBinds()").replace(
        str(port2), "PORT2").replace(str(p.values["port"]), "PORT").splitlines()[1:]]
    # which listener the kernel picks differs from run to run: the rows, and their sum
    binds = ([r[:3] for r in rows], sum(int(r[3]) for r in rows if r[1].endswith("PORT2")))
    servers = [line.split()[8] for line in _console(p, "showServers()").splitlines()
               if line.split() and line.split()[0].isdigit()]
    rules = [line.split()[1] for line in _console(p, "showRules()").splitlines()
             if line.split() and line.split()[0].isdigit()]
    return {"stats": {k: stats[k] for k in ("queries", "responses", "rdqueries",
                                            "frontend-noerror", "rule-refused")},
            "binds": binds, "server queries": servers, "rule matches": rules}


def test_reuseport_listeners_as_dnsdist(start_proc, responder):
    got = {i: _observed(start_proc, i, responder.address) for i in ("dnsdist", "pydist")}
    assert got["pydist"] == got["dnsdist"]
