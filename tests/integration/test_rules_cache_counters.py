"""Rule counters and verdicts stay exact when cache hits skip a pure chain (pydist's fast path
remembers a pass-through per query bytes), pydist against real dnsdist 1.7.3: every cache hit
still counts in the rules that matched it, and what a rule drops or answers never comes from the
cache."""
from __future__ import annotations

import re
import subprocess

import dnslib
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import poll_until, query
from tests.helpers.responder import default_handler

CONF = console_prelude(cache=1000) + """\
addAction(QTypeRule(DNSQType.HINFO), DropAction(), {name="hinfo"})
addAction("counted.test.", NoneAction(), {name="none"})
addAction(RegexRule("^allowed\\\\."), AllowAction(), {name="allow"})
addAction(AndRule({QTypeRule("A"), QNameRule("refused.test.")}), RCodeAction(DNSRCode.REFUSED), {name="refuse"})
addAction(AllRule(), NoneAction(), {name="all"})
"""


def matches(conf: str) -> dict[str, int]:
    out = subprocess.run(["dnsdist", "-C", conf, "-e", "showRules()"], capture_output=True,
                         text=True, timeout=10).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(?m)^\d+\s+(\S+)\s+(\d+) ", out)}


@pytest.mark.parametrize("impl", BOTH)
def test_counters_exact_across_cache_hits(impl: str, start_proc: Starter,
                                          responder_factory: ResponderFactory) -> None:
    backend = responder_factory()
    proc = start_proc(impl, CONF, {"backend": backend.address})
    where = proc.addr()
    for _ in range(5):
        r = query(where, "counted.test.")
        assert r is not None and r.answer
    for _ in range(3):
        assert query(where, "allowed.example.") is not None
    for _ in range(2):
        assert query(where, "x.example.", "HINFO", timeout=0.5) is None
        r = query(where, "refused.test.")
        assert r is not None and r.rcode() == 5
    assert backend.count("counted.test.") == 1 and backend.count("allowed.example.") == 1
    assert matches(str(proc.conf)) == {"hinfo": 2, "none": 5, "allow": 3, "refuse": 2, "all": 5}


@pytest.mark.parametrize("impl", BOTH)
def test_rules_changed_from_the_console_apply_at_once(impl: str, start_proc: Starter,
                                                      responder_factory: ResponderFactory) -> None:
    """addAction/rmRule/mvRule/clearRules at runtime take effect on the next query, cache hits
    included (the fast path is recomputed)."""
    backend = responder_factory()
    proc = start_proc(impl, CONF, {"backend": backend.address})
    where, conf = proc.addr(), str(proc.conf)

    def run(cmd: str) -> str:
        return subprocess.run(["dnsdist", "-C", conf, "-e", cmd], capture_output=True,
                              text=True, timeout=10).stdout
    for _ in range(2):
        assert query(where, "live.test.") is not None                 # cached from now on
    run('addAction("live.test.", RCodeAction(DNSRCode.REFUSED), {name="live"})')
    r = query(where, "live.test.")
    assert r is not None and r.rcode() == 5                           # a hit no more
    run("mvRule(5, 0)")
    assert run("showRules()").splitlines()[1].split()[:2] == ["0", "live"]
    r = query(where, "live.test.")
    assert r is not None and r.rcode() == 5
    run("rmRule('live')")
    r = query(where, "live.test.")
    assert r is not None and r.rcode() == 0
    run("clearRules()")
    assert query(where, "x.example.", "HINFO") is not None            # the drop rule is gone
    assert matches(conf) == {}


TEMPFAIL = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
pc = newPacketCache(100, {temporaryFailureTTL=60})
getPool(""):setCache(pc)
addAction("short.sf.test.", SetTempFailureCacheTTLAction(1))
"""


def servfail_handler(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord | None:
    """SERVFAIL below sf.test. (health checks still get their answer)."""
    if not str(q.q.qname).endswith("sf.test."):
        return default_handler()(q, transport)
    r = q.reply()
    r.header.rcode = 2
    return r


@pytest.mark.parametrize("impl", BOTH)
def test_temp_failure_ttl_action(impl: str, start_proc: Starter,
                                 responder_factory: ResponderFactory) -> None:
    """SetTempFailureCacheTTLAction: that query's SERVFAIL is cached for its TTL only."""
    backend = responder_factory(servfail_handler)
    proc = start_proc(impl, TEMPFAIL, {"backend": backend.address})
    where = proc.addr()
    for name in ("short.sf.test.", "long.sf.test.", "short.sf.test.", "long.sf.test."):
        r = query(where, name)
        assert r is not None and r.rcode() == 2
    assert backend.count("short.sf.test.") == 1 and backend.count("long.sf.test.") == 1
    poll_until(lambda: query(where, "short.sf.test.") is not None
               and backend.count("short.sf.test.") == 2, timeout=6, interval=0.2)
    assert query(where, "long.sf.test.") is not None and backend.count("long.sf.test.") == 1
