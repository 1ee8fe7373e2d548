"""statNodeRespRing(visitor[, seconds]), pydist against real dnsdist 1.7.3: the visitor is
called for every name of the response ring's tree (children first, in label order, the root
last) with the node (fullname, labelsCount, numChildren()), its own counts and the counts of
the node with everything below it; what each call saw is compared line for line."""
from __future__ import annotations

import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import IMPLS, poll_until, run_cli, send_message
from tests.helpers.conf import console_prelude

CONF = console_prelude() + """newServer({address="{silent}", pool="silent"}):setUp()
setUDPTimeout(1)
addAction("slow.test.", PoolAction("silent"))
addAction("drop.test.", DropAction())
addAction("refused.test.", RCodeAction(DNSRCode.REFUSED))
addAction("sf.test.", RCodeAction(DNSRCode.SERVFAIL))
local function counts(s)
  local ok, hits = pcall(function() return s.hits end)
  return table.concat({s.queries, s.noerrors, s.nxdomains, s.servfails, s.drops, s.bytes,
                       tostring(ok and hits)}, " ")
end
seen = {}
function visitor(node, self, children)
  local ok, n = pcall(function() return node:numChildren() end)
  table.insert(seen, table.concat({node.fullname, node.labelsCount, tostring(ok and n),
                                   counts(self), counts(children)}, "|"))
  return true
end
"""
# one spelling per name: dnsdist's ring is sharded, so which spelling it meets first varies
NAMES = ("www.example.test.", "x.nx.test.", "Mail.Example.test.",
         "example.test.", "refused.test.", "sf.test.", "drop.test.", "a.b.c.other.", "other.")


def _run(proc) -> list[str]:
    for name in NAMES:
        for tcp in (False, True):
            send_message(proc.addr(), dns.message.make_query(name, "A"), tcp, timeout=0.5)
    send_message(proc.addr(), dns.message.make_query("txt.example.test.", "TXT"), False)
    send_message(proc.addr(), dns.message.make_query("slow.test.", "A"), False, timeout=0.2)
    poll_until(lambda: "slow.test." in run_cli(proc.impl, ["-C", str(proc.conf), "-e",
               "seen = {} statNodeRespRing(visitor) return table.concat(seen, '\\n')"]).stdout)
    out = []
    for call in ("statNodeRespRing(visitor)", "statNodeRespRing(visitor, 0)",
                 "statNodeRespRing(visitor, 3600)"):
        out.append(run_cli(proc.impl, ["-C", str(proc.conf), "-e",
                                       f"seen = {{}} {call} return table.concat(seen, '\\n')"]
                           ).stdout)
    return out


def test_stat_node_resp_ring_as_dnsdist(start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    views = {}
    for impl in IMPLS:
        backend, silent = responder_factory(), responder_factory()
        silent.silent = True          # its queries time out: drops in the tree
        proc = start_proc(impl, CONF, {"backend": backend.address, "silent": silent.address},
                          ready="Marking downstream .* as 'up'")
        views[impl] = _run(proc)
        proc.stop()
    for mine, theirs in zip(views["pydist"], views["dnsdist"], strict=True):
        assert mine == theirs
    assert "www.example.test." in views["pydist"][0]
