"""Response chains at serve time, pydist against real dnsdist 1.7.3 on the same config and
queries (facts §10.1): backend, cache-hit and self-answered chains, their verdicts (drop, ServFail,
HeaderModify), Lua response actions (errors give ServFail and a warning), tags carried from the
query, editTTLs, delays that do not hold other clients, the log lines and the counters."""
from __future__ import annotations

import re
import socket
import subprocess
import time

import dns.message
import dns.rcode
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query

CONF = console_prelude(cache=100) + """\
addResponseAction("rdrop.test.", DropResponseAction())
addResponseAction("rsf.test.", LuaResponseAction(function(dr) return DNSResponseAction.ServFail end))
addResponseAction("rerr.test.", LuaResponseAction(function(dr) error("boom") end))
addResponseAction("ttl.test.", LuaResponseAction(function(dr)
  dr:editTTLs(function(section, qclass, qtype, ttl) return 42 end)
  return DNSResponseAction.None
end))
addAction("tagged.test.", SetTagAction("k", "v"))
addResponseAction(TagRule("k", "v"), LuaResponseAction(function(dr)
  if dr:getTag("k") == "v" then dr.dh:setAA(false) return DNSResponseAction.HeaderModify end
  return DNSResponseAction.None
end), {name="tagged"})
addResponseAction(RCodeRule(DNSRCode.NXDOMAIN), SetTagResponseAction("a", "b"))
addResponseAction("slow.test.", DelayResponseAction(400))
addAction("qslow.test.", DelayAction(400))
addCacheHitResponseAction("drophit.test.", DropResponseAction())
addCacheHitResponseAction("sfhit.test.", LuaResponseAction(function(dr) return DNSResponseAction.ServFail end))
addAction("self.test.", RCodeAction(DNSRCode.REFUSED))
addAction("sd.test.", RCodeAction(DNSRCode.REFUSED))
addSelfAnsweredResponseAction(AllRule(), LogResponseAction("", false, false, false))
addSelfAnsweredResponseAction("sd.test.", DropResponseAction())
"""


def console(conf: str, cmd: str) -> str:
    res = subprocess.run(["dnsdist", "-C", conf, "-e", cmd], capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _stat(text: str, name: str) -> int:
    m = re.search(rf"(?m)(?:^|\s){re.escape(name)}\s+(\d+)", text)
    assert m, text
    return int(m.group(1))


def _rcode(r: dns.message.Message | None) -> str | None:
    return None if r is None else dns.rcode.to_text(r.rcode())


@pytest.fixture
def served(request: pytest.FixtureRequest, start_proc: Starter,
           responder_factory: ResponderFactory) -> tuple:
    backend = responder_factory()
    return start_proc(request.param, CONF, {"backend": backend.address}), backend


@pytest.mark.parametrize("served", BOTH, indirect=True)
def test_response_chain_verdicts(served: tuple) -> None:
    proc, backend = served
    where = proc.addr()
    for tcp in (False, True):
        assert query(where, "rdrop.test.", tcp=tcp, timeout=0.5) is None
        r = query(where, "rsf.test.", tcp=tcp)
        assert _rcode(r) == "SERVFAIL" and len(r.answer) == 1
        assert _rcode(query(where, "rerr.test.", tcp=tcp)) == "SERVFAIL"
        r = query(where, "x.nx.test.", tcp=tcp)
        assert _rcode(r) == "NXDOMAIN"
        r = query(where, f"{int(tcp)}.ttl.test.", tcp=tcp)
        assert r.answer[0].ttl == 42
        r = query(where, f"{int(tcp)}.tagged.test.", tcp=tcp)
        assert _rcode(r) == "NOERROR" and "AA" not in dns.flags.to_text(r.flags)
    assert backend.count("rdrop.test.") == 2
    proc.wait_for(r'^LuaResponseAction failed inside Lua, returning ServFail: \[string "chunk"\]:\d+: boom$')
    proc.wait_for(r"^\t\[C\]: in function 'error'$")
    conf = str(proc.conf)
    rules = console(conf, "showResponseRules()").splitlines()
    assert rules[0].split() == ["#", "Name", "Matches", "Rule", "Action"]
    assert rules[1].split() == ["0", "2", "qname", "in", "rdrop.test.", "drop"]
    assert rules[5].split()[:3] == ["4", "tagged", "2"]
    assert rules[6].split() == ["5", "2", "rcode==Non-Existent", "domain", "set", "tag", "'a'",
                                "to", "value", "'b'"]
    stats = console(conf, "dumpStats()")
    assert _stat(stats, "responses") == 10          # dropped answers are not counted
    assert _stat(stats, "frontend-noerror") == 8    # the backend's rcode, before the rules
    assert _stat(stats, "frontend-nxdomain") == 2
    assert _stat(stats, "frontend-servfail") == 0


@pytest.mark.parametrize("served", BOTH, indirect=True)
def test_cache_hit_and_self_answered_chains(served: tuple) -> None:
    proc, backend = served
    where = proc.addr()
    for name in ("drophit.test.", "sfhit.test."):
        assert _rcode(query(where, name)) == "NOERROR"          # miss: the backend answers
    assert query(where, "drophit.test.", timeout=0.5) is None     # hit: dropped by the chain
    assert _rcode(query(where, "sfhit.test.")) == "SERVFAIL"
    assert backend.count("hit.test.") == 2
    for tcp in (False, True):
        r = query(where, "self.test.", tcp=tcp)
        assert _rcode(r) == "REFUSED" and "RA" in dns.flags.to_text(r.flags)
        assert query(where, "sd.test.", tcp=tcp, timeout=0.5) is None
    proc.wait_for(r"^Answer to 127\.0\.0\.1:\d+ for self\.test\. A \(Query Refused\) with id \d+$",
                  count=2)
    proc.wait_for(r"^Answer to 127\.0\.0\.1:\d+ for sd\.test\. A \(Query Refused\) with id \d+$",
                  count=2)
    conf = str(proc.conf)
    stats = console(conf, "dumpStats()")
    assert _stat(stats, "self-answered") == 2      # the dropped ones are not
    assert _stat(stats, "cache-hits") == 1         # the dropped hit is not
    rules = console(conf, "showCacheHitResponseRules()").splitlines()
    assert [ln.split()[1] for ln in rules[1:]] == ["1", "1"]
    sa = console(conf, "showSelfAnsweredResponseRules()").splitlines()
    assert [ln.split()[1] for ln in sa[1:]] == ["4", "2"]


@pytest.mark.parametrize("served", BOTH, indirect=True)
def test_delays_hold_nobody_else(served: tuple) -> None:
    proc, _ = served
    where = proc.addr()
    for name in ("slow.test.", "qslow.test."):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            started = time.monotonic()
            s.sendto(dns.message.make_query(name, "A").to_wire(), where)
            other = query(where, "quick.test.")            # answered while the slow one waits
            assert other is not None and other.answer
            data = s.recv(4096)
            waited = time.monotonic() - started
        assert dns.message.from_wire(data).answer and waited >= 0.35
    r = query(where, "slow.test.", tcp=True)                # TCP answers are never delayed
    assert r is not None and r.answer
