"""Dynamic blocks at serve time, pydist against real dnsdist 1.7.3 (facts §11): a bounded loopback
burst trips a dynBlockRulesGroup rate rule applied from maintenance(), the client is blocked over
UDP and TCP, showDynBlocks() and the counters say so, and the block expires on its own."""
from __future__ import annotations

import re
import socket
import subprocess

import dns.message
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter, available_impls
from tests.helpers.pydist_proc import poll_until, query

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
HEAD = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("%s")
newServer({address="{backend}"})
""" % KEY
GROUP = HEAD + """
local g = dynBlockRulesGroup()
g:setQueryRate(20, 2, "Exceeded query rate", 3)
g:excludeRange("192.0.2.0/24")
function maintenance() g:apply() end
"""
EXCEED = HEAD + """
setDynBlocksAction(DNSAction.Refused)
function maintenance()
  addDynBlocks(exceedQRate(20, 2), "Exceeded query rate", 3)
end
"""
BURST = 120          # queries sent at once: well over 20 qps x 2 s, bounded


def console(conf: str, cmd: str) -> str:
    """Real dnsdist's console client (it speaks to pydist too)."""
    res = subprocess.run(["dnsdist", "-C", conf, "-e", cmd], capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def burst(where: tuple[str, int], n: int = BURST) -> int:
    """Send n queries from one socket, collect answers for a short while; how many came back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for i in range(n):
            s.sendto(dns.message.make_query(f"b{i}.burst.test.", "A").to_wire(), where)
        got = 0
        try:
            while got < n:
                s.recv(4096)
                got += 1
        except socket.timeout:
            pass
    return got


def _blocked(where: tuple[str, int]) -> bool:
    return query(where, "probe.test.", timeout=0.4) is None


def _stat(text: str, name: str) -> int:
    m = re.search(rf"(?m)(?:^|\s){re.escape(name)}\s+(\d+)", text)
    assert m, text
    return int(m.group(1))


@pytest.mark.parametrize("impl", BOTH)
def test_rate_rule_blocks_then_expires(impl: str, start_proc: Starter,
                                       responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    proc = start_proc(impl, GROUP, {"backend": backend.address})
    where = proc.addr()
    assert query(where, "before.test.") is not None
    assert burst(where) > 0
    poll_until(lambda: _blocked(where), timeout=6)
    assert query(where, "tcp.test.", tcp=True, timeout=0.5) is None   # TCP blocked too
    line = proc.wait_for(r"Inserting dynamic block for")
    assert line == "Inserting dynamic block for 127.0.0.1/32 for 3 seconds: Exceeded query rate"
    conf = str(proc.conf)
    shown = console(conf, "showDynBlocks()").splitlines()
    assert shown[0].split() == ["What", "Seconds", "Blocks", "Warning", "Action", "Reason"]
    row = shown[1].split()
    assert row[0] == "127.0.0.1/32" and row[3:5] == ["false", "Drop"]
    assert int(row[2]) >= 1 and 0 <= int(row[1]) <= 3
    stats = console(conf, "dumpStats()")
    assert _stat(stats, "dyn-blocked") >= 1 and _stat(stats, "dyn-block-nmg-size") == 1
    poll_until(lambda: query(where, "after.test.", timeout=0.4) is not None, timeout=12)
    assert console(conf, "showDynBlocks()").splitlines()[1:] == []
    assert proc.alive()


@pytest.mark.parametrize("impl", BOTH)
def test_exceed_qrate_with_global_action(impl: str, start_proc: Starter,
                                         responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    proc = start_proc(impl, EXCEED, {"backend": backend.address})
    where = proc.addr()
    burst(where)

    def refused() -> bool:
        r = query(where, "probe.test.", timeout=0.5)
        return r is not None and r.rcode() == 5
    poll_until(refused, timeout=6)
    r = query(where, "probe.test.", tcp=True)
    assert r is not None and r.rcode() == 5 and not r.answer
    assert proc.wait_for(r"Inserting dynamic block for").endswith(
        "127.0.0.1 for 3 seconds: Exceeded query rate")
    conf = str(proc.conf)
    console(conf, "addDynBlocks({[newCA('192.0.2.9')]=1}, 'manual', 60)")
    rows = [ln for ln in console(conf, "showDynBlocks()").splitlines() if "192.0.2.9" in ln]
    assert rows and rows[0].split()[3:] == ["false", "Send", "Refused", "manual"]
    console(conf, "clearDynBlocks()")
    assert "192.0.2.9" not in console(conf, "showDynBlocks()")


SMT = HEAD + """
local g = dynBlockRulesGroup()
g:setSuffixMatchRule(10, "smt reason", 5, DNSAction.Refused, function(node, self, children)
  print(string.format("VISIT %s %d %d %d %d %d", node.fullname, node.labelsCount, self.queries,
                      self.nxdomains, children.queries, children.nxdomains))
  if node.fullname == "nx.test." and children.nxdomains >= 3 then return true, "many nx" end
  if node.fullname == "b.ok.test." then return true end
  return false
end)
g:excludeDomains({"ok.test."})
function maintenance() g:apply() end
"""


def _smt_blocks(impl: str, conf: str, start_proc: Starter,
                responder_factory: ResponderFactory, reason: str):
    """Answers for three names under nx.test. and two under ok.test., then nx.test. blocked
    (Refused) with `reason` once maintenance() applied the group; the process."""
    proc = start_proc(impl, conf, {"backend": responder_factory().address})
    where = proc.addr()
    for name in ("a.nx.test.", "b.nx.test.", "c.nx.test.", "a.ok.test.", "b.ok.test."):
        assert query(where, name) is not None

    def refused() -> bool:
        r = query(where, "z.nx.test.", timeout=0.5)
        return r is not None and r.rcode() == 5
    poll_until(refused, timeout=6)
    assert proc.wait_for(r"Inserting dynamic block for nx") == \
        f"Inserting dynamic block for nx.test for 5 seconds: {reason}"
    return proc


@pytest.mark.parametrize("impl", BOTH)
def test_suffix_match_rule_visits_and_blocks(impl: str, start_proc: Starter,
                                             responder_factory: ResponderFactory) -> None:
    """setSuffixMatchRule: the visitor sees the response tree (post-order, own and subtree
    counts); what it returns true for is blocked unless excluded."""
    proc = _smt_blocks(impl, SMT, start_proc, responder_factory, "many nx")
    where = proc.addr()
    r = query(where, "x.b.ok.test.")                    # excluded domain: never blocked
    assert r is not None and r.rcode() == 0
    visits = {ln for ln in proc.output.splitlines() if ln.startswith("VISIT")}
    assert {"VISIT a.nx.test. 3 1 1 1 1", "VISIT b.ok.test. 3 1 0 1 0",
            "VISIT ok.test. 2 0 0 2 0"} <= visits, sorted(visits)
    # names polled meanwhile add to nx.test. and the root: only their shape is fixed
    assert any(re.fullmatch(r"VISIT nx\.test\. 2 0 0 (\d+) (\d+)", v) for v in visits)
    assert any(re.fullmatch(r"VISIT  0 0 0 \d+ \d+", v) for v in visits)
    row = [ln for ln in console(str(proc.conf), "showDynBlocks()").splitlines()
           if ln.startswith("nx.test.")]
    assert row and row[0].split()[3:] == ["false", "Send", "Refused", "many", "nx"]


CACHED = HEAD + """
pc = newPacketCache(100)
getPool(""):setCache(pc)
"""


@pytest.mark.parametrize("impl", BOTH)
def test_blocks_apply_before_the_cache(impl: str, start_proc: Starter,
                                       responder_factory: ResponderFactory) -> None:
    """A cached answer is not served to a blocked client; other clients keep their cache hits."""
    backend = responder_factory()
    proc = start_proc(impl, CACHED, {"backend": backend.address})
    where, conf = proc.addr(), str(proc.conf)
    for _ in range(2):
        assert query(where, "cached.test.") is not None
    console(conf, "addDynBlocks({[newCA('192.0.2.1')]=1}, 'other client', 60)")
    r = query(where, "cached.test.")                   # not us: still a cache hit
    assert r is not None and r.answer and backend.count("cached.test.") == 1
    console(conf, "addDynBlocks({[newCA('127.0.0.1')]=1}, 'us', 60, DNSAction.Refused)")
    r = query(where, "cached.test.")
    assert r is not None and r.rcode() == 5 and not r.answer
    console(conf, "clearDynBlocks()")
    r = query(where, "cached.test.")
    assert r is not None and r.answer and backend.count("cached.test.") == 1
    stats = console(conf, "dumpStats()")
    assert _stat(stats, "dyn-blocked") == 1 and _stat(stats, "cache-hits") == 3


ACTIONS_CONF = HEAD + """
addDynBlockSMT({"nx.dyn.test."}, "nx", 60, DNSAction.Nxdomain)
addDynBlockSMT({"tc.dyn.test."}, "tc", 60, DNSAction.Truncate)
addDynBlockSMT({"norec.dyn.test."}, "norec", 60, DNSAction.NoRecurse)
addDynBlockSMT({"noop.dyn.test."}, "noop", 60, DNSAction.NoOp)
addAction("noop.dyn.test.", RCodeAction(DNSRCode.REFUSED))
addAction("norec.dyn.test.", RCodeAction(DNSRCode.REFUSED))
"""


@pytest.mark.skipif(len(available_impls()) < 2, reason="dnsdist not installed")
def test_dynblock_actions_as_dnsdist(start_proc: Starter,
                                     responder_factory: ResponderFactory) -> None:
    """Nxdomain answers, Truncate answers TC over UDP only, NoRecurse forwards with RD=0 and
    skips the query rules, NoOp only goes on (and is not counted)."""
    import dns.flags
    backend = responder_factory()
    views: dict[str, list] = {}
    blocked: dict[str, int] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, ACTIONS_CONF, {"backend": backend.address})
        out = []
        for name in ("a.nx.dyn.test.", "a.tc.dyn.test.", "a.norec.dyn.test.", "a.noop.dyn.test."):
            for tcp in (False, True):
                r = query(proc.addr(), name, tcp=tcp, use_edns=0)
                out.append((name, tcp, None if r is None else
                            (r.rcode(), dns.flags.to_text(r.flags), [str(x) for x in r.answer],
                             r.edns)))
        views[impl] = out
        blocked[impl] = _stat(console(str(proc.conf), "dumpStats()"), "dyn-blocked")
        proc.stop()
    assert views["pydist"] == views["dnsdist"]
    assert blocked["pydist"] == blocked["dnsdist"]
    assert views["pydist"][2][2][0] == 0 and "TC" in views["pydist"][2][2][1]


SMT_FFI = HEAD + """
local ffi = require("ffi")
local C = ffi.C
ffi.cdef[[
  typedef struct dnsdist_ffi_stat_node_t dnsdist_ffi_stat_node_t;
  uint64_t dnsdist_ffi_stat_node_get_queries_count(const dnsdist_ffi_stat_node_t* node);
  uint64_t dnsdist_ffi_stat_node_get_noerrors_count(const dnsdist_ffi_stat_node_t* node);
  uint64_t dnsdist_ffi_stat_node_get_nxdomains_count(const dnsdist_ffi_stat_node_t* node);
  uint64_t dnsdist_ffi_stat_node_get_servfails_count(const dnsdist_ffi_stat_node_t* node);
  uint64_t dnsdist_ffi_stat_node_get_drops_count(const dnsdist_ffi_stat_node_t* node);
  unsigned int dnsdist_ffi_stat_node_get_labels_count(const dnsdist_ffi_stat_node_t* node);
  void dnsdist_ffi_stat_node_get_full_name_raw(const dnsdist_ffi_stat_node_t* node,
                                               const char** name, size_t* nameSize);
  unsigned int dnsdist_ffi_stat_node_get_children_count(const dnsdist_ffi_stat_node_t* node);
  uint64_t dnsdist_ffi_stat_node_get_children_queries_count(const dnsdist_ffi_stat_node_t* node);
  uint64_t dnsdist_ffi_stat_node_get_children_noerrors_count(const dnsdist_ffi_stat_node_t* node);
  uint64_t dnsdist_ffi_stat_node_get_children_nxdomains_count(const dnsdist_ffi_stat_node_t* n);
  uint64_t dnsdist_ffi_stat_node_get_children_servfails_count(const dnsdist_ffi_stat_node_t* n);
  uint64_t dnsdist_ffi_stat_node_get_children_drops_count(const dnsdist_ffi_stat_node_t* node);
]]
local g = dynBlockRulesGroup()
g:setSuffixMatchRuleFFI(10, "smt ffi", 5, DNSAction.Refused, function(node, extra)
  local name = ffi.new("const char*[1]")
  local size = ffi.new("size_t[1]")
  C.dnsdist_ffi_stat_node_get_full_name_raw(node, name, size)
  local full = ffi.string(name[0], size[0])
  print(string.format("VISIT %s %s %d %d %s %s %s %s %s %s %s %s %s %s %s", full,
        tostring(extra), C.dnsdist_ffi_stat_node_get_labels_count(node),
        C.dnsdist_ffi_stat_node_get_children_count(node),
        tostring(C.dnsdist_ffi_stat_node_get_queries_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_noerrors_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_nxdomains_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_servfails_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_drops_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_children_queries_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_children_noerrors_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_children_nxdomains_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_children_servfails_count(node)),
        tostring(C.dnsdist_ffi_stat_node_get_children_drops_count(node)),
        type(C.dnsdist_ffi_stat_node_get_queries_count(node))))
  return full == "nx.test." and C.dnsdist_ffi_stat_node_get_children_nxdomains_count(node) >= 3
end)
g:excludeDomains({"ok.test."})
function maintenance() g:apply() end
"""


@pytest.mark.parametrize("impl", BOTH)
def test_suffix_match_rule_ffi_visits_and_blocks(impl: str, start_proc: Starter,
                                                 responder_factory: ResponderFactory) -> None:
    """setSuffixMatchRuleFFI: the visitor gets a dnsdist_ffi_stat_node_t* and reads the node
    through dnsdist 1.7.3's accessors, which the config declares (own counts, and the node's
    with everything below); a true answer blocks the name with the rule's reason."""
    proc = _smt_blocks(impl, SMT_FFI, start_proc, responder_factory, "smt ffi")
    visits = {ln for ln in proc.output.splitlines() if ln.startswith("VISIT")}
    assert {"VISIT a.nx.test. nil 3 0 1ULL 0ULL 1ULL 0ULL 0ULL 1ULL 0ULL 1ULL 0ULL 0ULL cdata",
            "VISIT ok.test. nil 2 2 0ULL 0ULL 0ULL 0ULL 0ULL 2ULL 2ULL 0ULL 0ULL 0ULL cdata",
            } <= visits, sorted(visits)
    assert any(re.fullmatch(r"VISIT  nil 0 1 0ULL( 0ULL){4} \d+ULL \d+ULL \d+ULL 0ULL 0ULL cdata",
                            v) for v in visits), sorted(visits)


UNDECLARED = HEAD + """
local g = dynBlockRulesGroup()
g:setSuffixMatchRuleFFI(10, "smt ffi", 5, DNSAction.Refused, function(node)
  local ok, err = pcall(function()
    return require("ffi").C.dnsdist_ffi_stat_node_get_queries_count(node)
  end)
  errlog("VISITERR " .. tostring(err))
  return false
end)
function maintenance() g:apply() end
"""


@pytest.mark.parametrize("impl", BOTH)
def test_suffix_match_rule_ffi_accessors_need_declaring(impl: str, start_proc: Starter,
                                                        responder_factory: ResponderFactory
                                                        ) -> None:
    """dnsdist 1.7.3 does not declare the node accessors itself: undeclared, they fail."""
    proc = start_proc(impl, UNDECLARED, {"backend": responder_factory().address})
    assert query(proc.addr(), "a.test.") is not None
    assert re.search(r"VISITERR \[string \"chunk\"\]:\d+: missing declaration for symbol "
                     "'dnsdist_ffi_stat_node_get_queries_count'", proc.wait_for("VISITERR"))
