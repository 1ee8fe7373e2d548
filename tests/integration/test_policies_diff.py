"""Policies end to end, on pydist and real dnsdist 1.7.3: which backend each query reaches.

whashed and chashed are checked against the lookup2 model (facts §3) on both implementations,
so a pass on both means pydist picks the same server as dnsdist for the same names. The
deterministic policies are compared through the Queries column of showServers().
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from pydist.dns.burtle import burtle_ci
from pydist.dns.wire import text_to_wire
from tests.conftest import BOTH, ResponderFactory, Starter, available_impls
from tests.helpers.pydist_proc import query
from tests.helpers.responder import Responder, default_handler

PERTURBATION = 4242
WEIGHTS = (1, 2, 3)
NAMES = [f"n{i}.policy.test." for i in range(48)]


def uuid(i: int) -> str:
    return f"0b5e55ed-0000-4000-8000-{i:012x}"


def hashed_conf(policy: str, weights: tuple[int, ...]) -> str:
    lines = ['setSecurityPollSuffix("")', 'setLocal("127.0.0.1:{port}")',
             f"setWHashedPertubation({PERTURBATION})", f"setServerPolicy({policy})"]
    for i, w in enumerate(weights):
        lines.append(f'newServer({{address="{{b{i}}}", weight={w}, id="{uuid(i)}"}})')
    return "\n".join(lines) + "\n"


def model_whashed(name: str, weights: tuple[int, ...]) -> int:
    r = burtle_ci(text_to_wire(name), PERTURBATION) % sum(weights)
    acc = 0
    for i, w in enumerate(weights):
        acc += w
        if acc > r:
            return i
    raise AssertionError("unreachable")


def model_chashed(name: str, weights: tuple[int, ...]) -> int:
    ring = sorted((burtle_ci(f"{uuid(i)}-{k}".encode(), PERTURBATION), i)
                  for i, w in enumerate(weights) for k in range(w, 0, -1))
    h = burtle_ci(text_to_wire(name), PERTURBATION)
    return next((i for p, i in ring if p >= h), ring[0][1])


def picks(proc: object, backends: list[Responder], names: list[str]) -> list[int]:
    """Index of the backend that received each name (queries sent one after the other)."""
    out = []
    for name in names:
        assert query(proc.addr(), name) is not None, name
        got = [i for i, b in enumerate(backends) if b.count(name)]
        assert len(got) == 1, (name, got)
        out.append(got[0])
    return out


def start_with(impl: str, start_proc: Starter, conf: str, backends: list[Responder],
               ready: str = "auto") -> object:
    values = {f"b{i}": b.address for i, b in enumerate(backends)}
    proc = start_proc(impl, conf, values, ready=ready)
    proc.wait_for(r"Marking downstream .* as 'up'", count=len(backends))
    return proc


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("policy,model,weights", [
    ("whashed", model_whashed, WEIGHTS),
    ("chashed", model_chashed, tuple(w * 20 for w in WEIGHTS)),
])
def test_hashed_policies_follow_the_lookup2_model(impl: str, policy: str, model: object,
                                                   weights: tuple[int, ...], start_proc: Starter,
                                                   responder_factory: ResponderFactory) -> None:
    backends = [responder_factory() for _ in weights]
    proc = start_with(impl, start_proc, hashed_conf(policy, weights), backends)
    expected = [model(n, weights) for n in NAMES]  # type: ignore[operator]
    assert len(set(expected)) == len(weights)      # the sample reaches every server
    assert picks(proc, backends, NAMES) == expected


FFI_HASHED = """
local ffi = require("ffi")
local C = ffi.C
setServerPolicyLuaFFI("ffi%(kind)s", function(list, dq)
  local h = C.dnsdist_ffi_dnsquestion_get_qname_hash(dq, %(perturbation)d)
  return tonumber(C.dnsdist_ffi_servers_list_%(kind)s(list, dq, h))
end)
"""


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("kind,model,weights", [
    ("whashed", model_whashed, WEIGHTS),
    ("chashed", model_chashed, tuple(w * 20 for w in WEIGHTS)),
])
def test_ffi_hashed_helpers_follow_the_lookup2_model(impl: str, kind: str, model: object,
                                                     weights: tuple[int, ...],
                                                     start_proc: Starter,
                                                     responder_factory: ResponderFactory) -> None:
    """dnsdist_ffi_servers_list_whashed/chashed with the qname hash, from an FFI policy."""
    backends = [responder_factory() for _ in weights]
    conf = hashed_conf("firstAvailable", weights) + FFI_HASHED % {
        "kind": kind, "perturbation": PERTURBATION}
    proc = start_with(impl, start_proc, conf, backends)
    expected = [model(n, weights) for n in NAMES]  # type: ignore[operator]
    assert len(set(expected)) == len(weights)
    assert picks(proc, backends, NAMES) == expected


def test_chashed_keeps_names_when_a_server_is_added_at_runtime(
        start_proc: Starter, responder_factory: ResponderFactory) -> None:
    """Adding a server moves names only onto the newcomer (consistent hashing)."""
    weights = (50, 50)
    backends = [responder_factory() for _ in range(3)]
    conf = hashed_conf("chashed", weights) + 'controlSocket("127.0.0.1:{portconsole}")\n' \
        + 'setKey("MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=")\n'
    proc = start_with("pydist", start_proc, conf, backends[:2], "Accepting control connections")
    before = picks(proc, backends, NAMES)
    console(proc, f'newServer({{address="{backends[2].address}", weight=50, id="{uuid(2)}"}})'
                  ':setUp()')
    later = [n.replace("n", "m", 1) for n in NAMES]   # fresh names: counts stay unambiguous
    assert picks(proc, backends, later) == [model_chashed(n, (50, 50, 50)) for n in later]
    moved = [i for i, (n, b) in enumerate(zip(NAMES, before, strict=True))
             if model_chashed(n, (50, 50, 50)) != b]
    assert moved and all(model_chashed(NAMES[i], (50, 50, 50)) == 2 for i in moved)


def console(proc: object, cmd: str) -> str:
    """Real dnsdist's console client (`dnsdist -e`) against either implementation."""
    res = subprocess.run(["dnsdist", "-C", str(proc.conf), "-e", cmd], capture_output=True,
                         text=True, timeout=10)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
DETERMINISTIC = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("%s")
setServerPolicy(%s)
newServer({address="{b0}", name="first", order=1%s})
newServer({address="{b1}", name="second", order=2})
newServer({address="{b2}", name="third", order=3})
newServer({address="{b3}", name="forced-down", order=4}):setDown()
"""


def _mask(text: str) -> list[str]:
    """showServers() with the timing columns (Qps, Drate, Lat) blanked."""
    return [ln[:61] + " " * 7 + ln[68:103] + " " * 11 + ln[114:] if re.match(r"^\d+\s", ln)
            else ln for ln in text.splitlines()]


@pytest.mark.skipif("dnsdist" not in available_impls(), reason="needs real dnsdist")
@pytest.mark.parametrize("policy,qps", [("roundrobin", None), ("leastOutstanding", None),
                                        ("firstAvailable", None), ("firstAvailable", 0),
                                        ("firstAvailable", 3)])
def test_per_server_counts_identical(policy: str, qps: int | None, start_proc: Starter,
                                     responder_factory: ResponderFactory) -> None:
    """Sequential queries under a deterministic policy: the same Queries per server.

    firstAvailable skips a server whose qps tokens are spent; an explicit qps=0 is a limiter
    that never has one (as in dnsdist 1.7.3), not "unlimited"."""
    out = {}
    backends = [responder_factory() for _ in range(4)]   # the same ones: same Address column
    for impl in ("dnsdist", "pydist"):
        conf = DETERMINISTIC % (KEY, policy, "" if qps is None else f", qps={qps}")
        proc = start_proc(impl, conf, {f"b{i}": b.address for i, b in enumerate(backends)},
                          ready=r"Accepting control connections")
        proc.wait_for(r"Marking downstream .* as 'up'", count=3)
        for i in range(12):
            assert query(proc.addr(), f"c{i}.{impl}.policy.test.") is not None
        out[impl] = (_mask(console(proc, "showServers()")), [b.count(f".{impl}.policy.test.")
                                                             for b in backends])
        proc.stop()
    counts = out["pydist"][1]
    if qps:
        # the burst (3 tokens, maybe one refilled) goes first, the rest skips to "second"
        for impl in out:
            c = out[impl][1]
            assert c[0] in (3, 4) and c[1] == 12 - c[0] and c[2:] == [0, 0], (impl, c)
            assert re.search(r"^0   first .* up\s+3   1  1 ", "\n".join(out[impl][0]), re.M)
        return
    assert out["pydist"] == out["dnsdist"]
    assert counts[3] == 0 and sum(counts) == 12
    if policy == "roundrobin":
        assert counts == [4, 4, 4, 0]
    elif qps == 0:
        assert counts == [0, 12, 0, 0]
    else:
        assert counts == [12, 0, 0, 0]


ALL_DOWN = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setServerPolicy(roundrobin)
newServer({address="{b0}", checkTimeout=200})
newServer({address="{b1}", checkTimeout=200})
"""


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("fail,servfail", [(False, False), (True, False), (True, True)])
def test_roundrobin_with_every_server_down(impl: str, fail: bool, servfail: bool,
                                           start_proc: Starter,
                                           responder_factory: ResponderFactory) -> None:
    """roundrobin sends to down servers unless setRoundRobinFailOnNoServer(true); then the
    query is dropped, or answered SERVFAIL with setServFailWhenNoServer(true)."""
    backends = [responder_factory(), responder_factory()]
    for b in backends:
        b.silent = True
    conf = ALL_DOWN + f"setRoundRobinFailOnNoServer({str(fail).lower()})\n" \
        + f"setServFailWhenNoServer({str(servfail).lower()})\n"
    proc = start_proc(impl, conf, {"b0": backends[0].address, "b1": backends[1].address},
                      ready=None)
    proc.wait_for(r"Marking downstream .* as 'down'", count=2)
    answers = [query(proc.addr(), f"d{i}.down.test.", timeout=0.5) for i in range(4)]
    sent = [b.count(".down.test.") for b in backends]
    if not fail:
        assert sent == [2, 2] and answers == [None] * 4
    elif servfail:
        assert sent == [0, 0] and all(a is not None and a.rcode() == 2 for a in answers)
    else:
        assert sent == [0, 0] and answers == [None] * 4


POLICY_CONSOLE = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("CONSOLEKEY")
setServerPolicy(chashed)
newServer({address="{b0}", name="x1", pool="x"})
newServer({address="{b0}", name="x2", pool={"x", "y"}})
setPoolServerPolicyLua("mine", function(s, dq) return s[1] end, "y")
setWHashedPertubation(7)
setWeightedBalancingFactor(1.5)
""".replace("CONSOLEKEY", KEY)
POLICY_COMMANDS = ["showServerPolicy()", 'showPoolServerPolicy("x")', 'showPoolServerPolicy("y")',
                   "whashed", "chashed", "wrandom", 'getPoolServers("x")',
                   'newServerPolicy("n", function(s, dq) return nil end)',
                   "setWeightedBalancingFactor(0.5)", "setConsistentHashingBalancingFactor(0)",
                   "setWHashedPertubation(4294967296)", "showPools()"]


@pytest.mark.skipif("dnsdist" not in available_impls(), reason="needs real dnsdist")
def test_policy_console_outputs_identical(start_proc: Starter, responder: Responder) -> None:
    out = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, POLICY_CONSOLE, {"b0": responder.address},
                          ready="Accepting control connections")
        out[impl] = {c: console(proc, c) for c in POLICY_COMMANDS}
        proc.stop()
    for c in POLICY_COMMANDS:
        # an error's traceback ends with a C frame address in dnsdist: first line only
        p, d = out["pydist"][c], out["dnsdist"][c]
        if d.startswith("Error: "):
            p, d = p.splitlines()[0], d.splitlines()[0]
        assert p == d, c
    assert out["pydist"]["showServerPolicy()"] == "chashed\n"


WRANDOM = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setServerPolicy(wrandom)
newServer({address="{b0}", weight=1})
newServer({address="{b1}", weight=3})
"""


@pytest.mark.parametrize("impl", BOTH)
def test_wrandom_share_follows_weight(impl: str, start_proc: Starter,
                                      responder_factory: ResponderFactory) -> None:
    backends = [responder_factory(), responder_factory()]
    proc = start_with(impl, start_proc, WRANDOM, backends)
    for i in range(200):
        assert query(proc.addr(), f"w{i}.wr.test.") is not None
    share = backends[1].count(".wr.test.") / 200
    assert abs(share - 0.75) < 0.1, share      # 3:1 within a tolerance (binomial sd ~0.03)


def slow(q: object, transport: str) -> object:
    time.sleep(0.03)
    return default_handler()(q, transport)  # type: ignore[arg-type]


LEAST = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{b0}", name="slow"})
newServer({address="{b1}", name="fast"})
"""


@pytest.mark.parametrize("impl", BOTH)
def test_least_outstanding_prefers_the_faster_server(impl: str, start_proc: Starter,
                                                     responder_factory: ResponderFactory) -> None:
    """Equal outstanding and order: the lower latency average wins (facts §3)."""
    backends = [responder_factory(slow), responder_factory()]
    proc = start_with(impl, start_proc, LEAST, backends)
    for i in range(30):
        assert query(proc.addr(), f"l{i}.lo.test.") is not None
    assert backends[0].count(".lo.test.") <= 2
    assert backends[1].count(".lo.test.") >= 28


RUNTIME_POLICY = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portconsole}")
setKey("CONSOLEKEY")
newServer({address="{b0}"})
pc = newPacketCache(100)
getPool(""):setCache(pc)
""".replace("CONSOLEKEY", KEY)


@pytest.mark.skipif("dnsdist" not in available_impls(), reason="needs real dnsdist")
def test_policy_set_at_runtime_runs_before_the_cache(start_proc: Starter,
                                                     responder: Responder) -> None:
    """The policy is chosen before the cache lookup, so a Lua policy installed from the
    console is called for cache hits too (pydist's cache shortcut steps aside for it)."""
    out = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, RUNTIME_POLICY, {"b0": responder.address},
                          ready="Accepting control connections")
        proc.wait_for(r"Marking downstream .* as 'up'")
        name = f"hit.{impl}.rt.test."
        assert query(proc.addr(), name) is not None
        console(proc, 'setServerPolicyLua("count", function(s, dq) calls = (calls or 0) + 1 '
                      'return s[1] end)')
        for _ in range(3):
            assert query(proc.addr(), name) is not None
        out[impl] = (console(proc, "calls"), responder.count(name))
        proc.stop()
    assert out["pydist"] == out["dnsdist"] == ("3\n", 1)


BOUNDED = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setServerPolicy(%s)
%s
newServer({address="{b0}", name="stuck", id="%s"}):setUp()
newServer({address="{b1}", name="fine", id="%s"}):setUp()
"""


@pytest.mark.parametrize("impl", BOTH)
@pytest.mark.parametrize("policy,factor", [
    ("wrandom", "setWeightedBalancingFactor(1.0)"), ("whashed", "setWeightedBalancingFactor(1.0)"),
    ("chashed", "setConsistentHashingBalancingFactor(1.0)")])
def test_balancing_factor_caps_a_server_that_does_not_answer(
        impl: str, policy: str, factor: str, start_proc: Starter,
        responder_factory: ResponderFactory) -> None:
    """Bounded load: with factor 1 and equal weights a server is skipped once its outstanding
    count exceeds (1 + total outstanding) / 2, so the stuck server gets at most one more."""
    stuck, fine = responder_factory(), responder_factory()
    stuck.silent = True
    conf = BOUNDED % (policy, factor, uuid(0), uuid(1))
    proc = start_proc(impl, conf, {"b0": stuck.address, "b1": fine.address}, ready="Console ACL")
    answered = sum(query(proc.addr(), f"b{i}.bound.test.", timeout=0.3) is not None
                   for i in range(30))
    assert stuck.count(".bound.test.") <= 2
    assert answered == 30 - stuck.count(".bound.test.")
