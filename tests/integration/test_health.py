"""Health checks end to end with backends the tests control, on pydist and real dnsdist 1.7.3:
state changes at the configured counts, dnsdist's log lines, traffic leaving a dead server and
coming back after `rise` successes, checkFunction."""
from __future__ import annotations

import re
import time

import dnslib
import pytest

from tests.conftest import BOTH, ResponderFactory, Starter, available_impls
from tests.helpers.pydist_proc import free_port, poll_until, query
from tests.helpers.responder import Handler, Responder, default_handler
from tests.integration.test_policies_diff import console

CHECK = "hc.test."


def marking(name_with_addr: str, state: str) -> str:
    return rf"^Marking downstream {name_with_addr.replace('(', '[(]').replace(')', '[)]')} " \
           rf"as '{state}'$"


def checks(b: Responder) -> int:
    return b.count(CHECK)


TRANSITIONS = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setVerboseHealthChecks(true)
newServer({address="{b0}", name="hc", checkName="CHECK", checkTimeout=300, maxCheckFailures=2,
           rise=2})
""".replace("CHECK", CHECK)


@pytest.mark.parametrize("impl", BOTH)
def test_down_after_max_check_failures_up_after_rise(impl: str, start_proc: Starter,
                                                     responder: Responder) -> None:
    proc = start_proc(impl, TRANSITIONS, {"b0": responder.address}, ready=None)
    nwa = f"hc ({responder.address})"
    proc.wait_for(marking(nwa, "up"))
    poll_until(lambda: checks(responder) >= 2)      # a regular check, not only the initial one
    mark = checks(responder)
    responder.silent = True
    proc.wait_for(marking(nwa, "down"), timeout=8)
    assert checks(responder) - mark == 2            # maxCheckFailures=2 unanswered checks
    timeouts = [ln for ln in proc.lines if ln == "Timeout while waiting for the health check "
                f"response from backend {nwa}"]
    assert len(timeouts) == 2
    mark = checks(responder)
    responder.silent = False
    proc.wait_for(marking(nwa, "up"), timeout=8, count=2)
    assert checks(responder) - mark == 2            # rise=2 answered checks


def servfail(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    r = q.reply()
    r.header.rcode = 2
    return r


def wrong_id(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    r = default_handler()(q, transport)
    r.header.id = q.header.id ^ 0x5A5A
    return r


def nxdomain(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    r = q.reply()
    r.header.rcode = 3
    return r


REASONS = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setVerboseHealthChecks(true)
newServer({address="{b0}", name="sf"})
newServer({address="{b1}", name="badid"})
newServer({address="{b2}", name="nx", mustResolve=true})
newServer({address="{b3}", name="nx-ok"})
"""


@pytest.mark.parametrize("impl", BOTH)
def test_failure_reasons_and_initial_marks(impl: str, start_proc: Starter,
                                           responder_factory: ResponderFactory) -> None:
    handlers: list[Handler] = [servfail, wrong_id, nxdomain, nxdomain]
    bs = [responder_factory(h) for h in handlers]
    proc = start_proc(impl, REASONS, {f"b{i}": b.address for i, b in enumerate(bs)}, ready=None)
    for name, b, state in (("sf", bs[0], "down"), ("badid", bs[1], "down"), ("nx", bs[2], "down"),
                           ("nx-ok", bs[3], "up")):
        proc.wait_for(marking(f"{name} ({b.address})", state))
    proc.wait_for(rf"^Backend sf \({bs[0].address}\) responded to health check with ServFail$")
    line = proc.wait_for(rf"^Invalid health check response id \d+ from backend badid "
                         rf"\({bs[1].address}\), expecting \d+$")
    ids = [w for w in line.split() if w.isdigit()]
    assert ids[0] == ids[1]                  # dnsdist 1.7.3 prints the expected ID twice
    proc.wait_for(rf"^Backend nx \({bs[2].address}\) responded to health check with NXDomain "
                  "while mustResolve is set$")


REFUSED = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="127.0.0.1:{portclosed}", name="closed", checkTimeout=500})
newServer({address="{b0}", name="quits", maxCheckFailures=3})
"""


@pytest.mark.parametrize("impl", BOTH)
def test_icmp_refused_counts_three_failures(impl: str, start_proc: Starter,
                                            responder: Responder) -> None:
    """dnsdist 1.7.3 runs its failure path three times on an ICMP error: three initial 'down'
    lines, and maxCheckFailures=3 reached with a single refused check."""
    closed = free_port()
    proc = start_proc(impl, REFUSED, {"b0": responder.address, "portclosed": closed},
                      ready=None)
    quits = f"quits ({responder.address})"
    proc.wait_for(marking(quits, "up"))
    proc.wait_for(marking(f"closed (127.0.0.1:{closed})", "down"), count=3)
    poll_until(lambda: checks_any(responder) >= 2)
    responder.close()
    gone = time.monotonic()
    proc.wait_for(marking(quits, "down"), timeout=5)
    assert time.monotonic() - gone < 1.9       # the next check, not the third one
    lines = [ln for ln in proc.lines if ln.startswith("Marking downstream closed")]
    assert len(lines) == 3


def checks_any(b: Responder) -> int:
    return b.count("a.root-servers.net.")


FAILOVER = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setServerPolicy(firstAvailable)
newServer({address="{b0}", name="main", order=1, checkName="CHECK", checkTimeout=300, rise=2})
newServer({address="{b1}", name="backup", order=2})
""".replace("CHECK", CHECK)


@pytest.mark.parametrize("impl", BOTH)
def test_traffic_leaves_a_dead_server_and_returns_after_rise(
        impl: str, start_proc: Starter, responder_factory: ResponderFactory) -> None:
    main, backup = responder_factory(), responder_factory()
    proc = start_proc(impl, FAILOVER, {"b0": main.address, "b1": backup.address}, ready=None)
    proc.wait_for(marking(f"main ({main.address})", "up"))
    proc.wait_for(marking(f"backup ({backup.address})", "up"))
    assert query(proc.addr(), "before.fo.test.") is not None
    assert main.count("before.fo.test.") == 1
    main.silent = True
    proc.wait_for(marking(f"main ({main.address})", "down"), timeout=6)
    for i in range(5):
        assert query(proc.addr(), f"during{i}.fo.test.") is not None
    assert backup.count(".fo.test.") == 5 and main.count("during0.fo.test.") == 0
    mark = checks(main)
    main.silent = False
    poll_until(lambda: checks(main) > mark, timeout=4)   # one success: rise=2 keeps it down
    assert query(proc.addr(), "rising.fo.test.") is not None
    if checks(main) == mark + 1 and "as 'up'" not in proc.lines[-1]:
        assert backup.count("rising.fo.test.") == 1
    proc.wait_for(marking(f"main ({main.address})", "up"), timeout=6, count=2)
    assert query(proc.addr(), "after.fo.test.") is not None
    assert main.count("after.fo.test.") == 1


class Recorder:
    """A handler that keeps the header and question of every health query it answers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, bool]] = []

    def __call__(self, q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
        if q.q.qtype != dnslib.QTYPE.A or str(q.q.qname) != "cf.example.":
            self.seen.append((str(q.q.qname), q.q.qtype, bool(q.header.cd)))
        return q.reply()


CHECK_FUNCTION = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
function myHealthCheck(qname, qtype, qclass, dh)
  dh:setCD(true)
  return newDNSName("other." .. qname:toString()), DNSQType.AAAA, qclass
end
newServer({address="{b0}", checkName="hc.test.", checkFunction=myHealthCheck})
"""


@pytest.mark.parametrize("impl", BOTH)
def test_check_function_rewrites_the_health_query(impl: str, start_proc: Starter,
                                                  responder_factory: ResponderFactory) -> None:
    rec = Recorder()
    b = responder_factory(rec)
    proc = start_proc(impl, CHECK_FUNCTION, {"b0": b.address})   # up: the answer matched
    assert rec.seen[0] == ("other.hc.test.", dnslib.QTYPE.AAAA, True)
    assert query(proc.addr(), "cf.example.") is not None


STATES = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=")
newServer({address="{alive}", name="auto-up"})
newServer({address="{dead}", name="auto-down", checkTimeout=200})
newServer({address="{dead}", name="forced-up"}):setUp()
newServer({address="{alive}", name="forced-down"}):setDown()
newServer({address="{alive}", name="back-to-auto"}):setDown()
getServer(4):setAuto()
"""


@pytest.mark.skipif("dnsdist" not in available_impls(), reason="needs real dnsdist")
def test_show_servers_states_identical(start_proc: Starter,
                                       responder_factory: ResponderFactory) -> None:
    """up/down for health-checked servers, UP/DOWN when forced; a forced-UP server is used
    even though it never answers, a forced-DOWN one never is."""
    alive, dead = responder_factory(), responder_factory()
    dead.silent = True
    out = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, STATES, {"alive": alive.address, "dead": dead.address},
                          ready="Accepting control connections")
        proc.wait_for("Marking downstream auto-down .* as 'down'")
        proc.wait_for("Marking downstream back-to-auto .* as 'up'")
        text = console(proc, "showServers()")
        out[impl] = [ln[:61] + ln[68:103] + ln[114:] for ln in text.splitlines()]
        proc.stop()
    assert out["pydist"] == out["dnsdist"]
    states = [ln.split()[3] if len(ln.split()) > 3 else "" for ln in out["pydist"][1:6]]
    assert states == ["up", "down", "UP", "DOWN", "up"]


NO_WAIT = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{slow}", name="slow", checkTimeout=2500})
newServer({address="{fast}", name="fast"})
"""


def test_a_dead_server_does_not_delay_the_others_checks(
        start_proc: Starter, responder_factory: ResponderFactory) -> None:
    """pydist checks each server on its own schedule: a check waiting 2.5 s on a silent
    backend does not hold back the others. (dnsdist 1.7.3 waits for every check of a round,
    so there its period becomes 1 s + the slowest timeout.)"""
    slow, fast = responder_factory(), responder_factory()
    slow.silent = True
    proc = start_proc("pydist", NO_WAIT, {"slow": slow.address, "fast": fast.address},
                      ready=None, timeout=6)
    proc.wait_for(marking(f"fast ({fast.address})", "up"), timeout=6)
    start, t0 = checks_any(fast), time.monotonic()
    poll_until(lambda: checks_any(fast) >= start + 3, timeout=4.5)
    assert time.monotonic() - t0 < 4.5
    assert checks_any(slow) <= checks_any(fast)


TIMEOUTS = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=")
setUDPTimeout(1)
newServer({address="{mute}", name="mute"}):setUp()
"""


@pytest.mark.skipif("dnsdist" not in available_impls(), reason="needs real dnsdist")
def test_unanswered_queries_become_drops(start_proc: Starter,
                                         responder_factory: ResponderFactory) -> None:
    """Queries in flight to a server that went silent time out: Outstanding goes back to 0,
    Drops and downstream-timeouts count them, identically to dnsdist."""
    mute = responder_factory()
    mute.silent = True
    out = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, TIMEOUTS, {"mute": mute.address},
                          ready="Accepting control connections")
        for i in range(4):
            assert query(proc.addr(), f"t{i}.{impl}.mute.test.", timeout=0.2) is None

        def row(p: object = proc) -> list[str]:
            return console(p, "showServers()").splitlines()[1].split()
        poll_until(lambda: row()[9] == "4", timeout=8)
        fields = row()
        stats = console(proc, "dumpStats()")
        out[impl] = (fields[8:10] + fields[12:13],
                     re.search(r"downstream-timeouts\s+(\d+)", stats).group(1))
        proc.stop()
    assert out["pydist"] == out["dnsdist"] == (["4", "4", "0"], "4")


def slow_checks(q: dnslib.DNSRecord, transport: str) -> dnslib.DNSRecord:
    """Health queries answered after 0.8 s (the responder's thread waits meanwhile)."""
    if str(q.q.qname) == "a.root-servers.net.":
        time.sleep(0.8)
    return default_handler()(q, transport)


@pytest.mark.parametrize("impl", BOTH)
def test_queries_during_the_initial_check_wait_for_it(impl: str, start_proc: Starter,
                                                      responder_factory: ResponderFactory) -> None:
    """The initial check runs before serving: an early query is answered once it is done,
    not dropped because the server is not up yet."""
    b = responder_factory(slow_checks)
    proc = start_proc(impl, 'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
                      'newServer({address="{b0}"})\n', {"b0": b.address}, ready="Listening on")
    resp = query(proc.addr(), "early.test.", timeout=3)
    assert resp is not None and resp.answer
    assert any("as 'up'" in ln for ln in proc.lines)


@pytest.mark.parametrize("impl", BOTH)
def test_check_tcp_sends_health_queries_over_tcp(impl: str, start_proc: Starter,
                                                 responder: Responder) -> None:
    proc = start_proc(impl, 'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
                      'newServer({address="{b0}", checkTCP=true, checkName="CHECK"})\n'
                      .replace("CHECK", CHECK),
                      {"b0": responder.address})
    poll_until(lambda: checks(responder) >= 2)
    with responder.lock:
        transports = {t for n, t, _ in responder.queries if n == CHECK}
    assert transports == {"tcp"}
    assert query(proc.addr(), "after.tcpcheck.test.") is not None


TCP_REASONS = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setVerboseHealthChecks(true)
newServer({address="127.0.0.1:{portclosed}", name="c", checkTCP=true})
newServer({address="{mute}", name="s", checkTCP=true, checkTimeout=300})
"""


@pytest.mark.parametrize("impl", BOTH)
def test_tcp_check_failure_reasons(impl: str, start_proc: Starter, responder: Responder) -> None:
    responder.silent = True
    closed = free_port()
    proc = start_proc(impl, TCP_REASONS, {"mute": responder.address, "portclosed": closed},
                      ready=None)
    proc.wait_for(rf"^Error checking the health of backend c \(127.0.0.1:{closed}\): "
                  "Error while writing message: Connection refused$")
    proc.wait_for("^Timeout while waiting for the health check response from backend "
                  rf"s \({responder.address}\)$")
    proc.wait_for(marking(f"c (127.0.0.1:{closed})", "down"))
    proc.wait_for(marking(f"s ({responder.address})", "down"))
