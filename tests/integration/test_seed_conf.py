"""conf.d/seed.conf, rewritten to loopback only, serves UDP and TCP and caches."""
from __future__ import annotations

import ipaddress
import re
import shutil
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.dot import dnsdist_dot_server, dot_query, make_cert_set
from tests.helpers.pydist_proc import query, run_cli
from tests.helpers.responder import Responder

DOT_UPSTREAM = "dnsdist" if shutil.which("dnsdist") else "pydist"
SEED = Path(__file__).resolve().parents[2] / "conf.d" / "seed.conf"
FALLBACK = """controlSocket("127.0.0.1:5199")
setKey("MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=")
addLocal("127.0.0.1:53")
addLocal("[::1]:53")
addLocal("10.254.1.1:53")
addACL("0.0.0.0/0")
addACL("::/0")
pc = newPacketCache(100000, {maxTTL=300, minTTL=0, maxNegativeTTL=60})
newServer({address="8.8.8.8:853", tls="openssl"})
newServer({address="1.0.0.1:853", tls="openssl"})
newServer({address="[2001:4860:4860::8888]:853", tls="openssl"})
newServer({address="127.0.0.1:2053"})
getPool(""):setCache(pc)
"""
_ADDR = re.compile(r'^(\s*)(addLocal|setLocal|controlSocket)\("\[?([^"\]]+?)\]?(?::\d+)?"')
_SERVER = re.compile(r'^\s*newServer\(.*?"\[?([^"\]]+?)\]?(?::\d+)?"')
_QUOTED = re.compile(r'"\[?([0-9A-Fa-f:.]+?)\]?(?::\d+)?"')


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_seed(text: str, make_backend: Callable[[str], Responder],
                  make_dot: Callable[[str], str] | None = None, ca_path: str = "") -> str:
    """Every listener on `{port}` (non-loopback ones dropped), the console on `{portctl}`, every
    plain newServer a fresh responder of the same family, every tls= one a loopback DoT server
    from make_dot(host) trusted through caStore (plain responders when make_dot is None)."""
    out = ['setSecurityPollSuffix("")']
    for line in text.splitlines():
        m = _ADDR.match(line)
        s = _SERVER.match(line)
        if m:
            indent, fn, host = m.groups()
            if fn == "controlSocket":
                out.append(f'{indent}controlSocket("127.0.0.1:{{portctl}}")')
            elif _is_loopback(host):
                addr = f"[{host}]" if ":" in host else host
                out.append(f'{indent}{fn}("{addr}:{{port}}")')
        elif s:
            host = "::1" if ":" in s.group(1) else "127.0.0.1"
            if make_dot is not None and "tls=" in line:
                out.append(f'newServer({{address="{make_dot(host)}", tls="openssl", '
                           f'caStore="{ca_path}"}})')
                continue
            backend = make_backend(host)
            out.append(f'newServer({{address="{backend.address}"}})')
        else:
            out.append(line)
    result = "\n".join(out) + "\n"
    _assert_loopback_only(result)
    return result


def _assert_loopback_only(conf: str) -> None:
    """Refuse a config that still names a non-loopback address (ACL masks and comments aside)."""
    for line in conf.splitlines():
        if line.lstrip().startswith(("--", "addACL", "setACL", "addConsoleACL", "setConsoleACL")):
            continue
        for host in _QUOTED.findall(line):
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                continue
            assert ip.is_loopback, f"non-loopback address left in: {line}"


def test_rewrite_is_loopback_only(responder_factory: ResponderFactory) -> None:
    """The rewrite keeps the cache and ACL lines, drops 10.254.1.1, and removes tls=."""
    text = SEED.read_text() if SEED.exists() else FALLBACK
    conf = loopback_seed(text, lambda host: responder_factory(host=host))
    assert "10.254.1.1" not in conf and "tls=" not in conf and ":853\"" not in conf
    assert 'addACL("0.0.0.0/0")' in conf and "newPacketCache(100000" in conf
    assert conf.count("newServer(") == text.count("newServer(")
    for host in re.findall(r'address="\[?([^"\]]+?)\]?:\d+"', conf):
        assert _is_loopback(host)


@pytest.mark.parametrize("impl", BOTH)
def test_seed_conf_over_dot_end_to_end(impl: str, start_proc: Starter, tmp_path: Path,
                                       responder_factory: ResponderFactory) -> None:
    """client (UDP, TCP, DoT) -> seed.conf -> DoT upstreams (real dnsdist terminating DoT in
    front of responders), health-checked over TLS, answers cached."""
    certs = make_cert_set(tmp_path / "certs")
    plain: list[Responder] = []
    behind_dot: list[Responder] = []

    def make(host: str) -> Responder:
        plain.append(responder_factory(host=host))
        return plain[-1]

    def make_dot(host: str) -> str:
        behind_dot.append(responder_factory(host=host))
        up = start_proc(DOT_UPSTREAM, dnsdist_dot_server(certs, behind_dot[-1].address, host,
                                                         "portdot"),
                        ready="Listening on .* for TLS")
        port = up.values["portdot"]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    text = SEED.read_text() if SEED.exists() else FALLBACK
    conf = loopback_seed(text, make, make_dot, certs.ca_path)
    assert conf.count('tls="openssl"') == text.count('tls="openssl"') == len(behind_dot) == 3
    conf += f'addTLSLocal("127.0.0.1:{{portdot}}", "{certs.cert}", "{certs.key}")\n'
    proc = start_proc(impl, conf, ready=None)
    proc.wait_for(r"Marking downstream .* as 'up'", count=len(plain) + len(behind_dot))
    assert "as 'down'" not in proc.output
    for phase in ("all", "dot-only"):
        if phase == "dot-only":      # the plain upstream forced down: DoT carries everything
            servers = [ln for ln in conf.splitlines() if "newServer" in ln]
            index = next(i for i, ln in enumerate(servers) if "tls=" not in ln)
            res = run_cli(impl, ["-C", str(proc.conf), "-e", f"getServer({index}):setDown()"])
            assert res.returncode == 0, res.stdout + res.stderr
        for how in ("udp", "tcp", "dot"):
            name = f"seed-{phase}-{how}.example."
            for _ in range(2):
                if how == "dot":
                    ans = dot_query(proc.addr("portdot"), name, certs.ca_path)
                else:
                    ans = query(proc.addr(), name, tcp=how == "tcp")
                assert ans is not None and ans.answer[0][0].address == "192.0.2.1", how
            assert sum(b.count(name) for b in plain + behind_dot) == 1, how  # then a cache hit
            if phase == "dot-only":
                assert sum(b.count(name) for b in behind_dot) == 1, how
    assert proc.alive()


@pytest.mark.parametrize("impl", BOTH)
def test_seed_conf_serves_and_caches(impl: str, start_proc: Starter,
                                     responder_factory: ResponderFactory) -> None:
    backends: list[Responder] = []

    def make(host: str) -> Responder:
        backends.append(responder_factory(host=host))
        return backends[-1]
    text = SEED.read_text() if SEED.exists() else FALLBACK
    proc = start_proc(impl, loopback_seed(text, make))
    proc.wait_for(r"Marking downstream .* as 'up'", count=len(backends))

    def asked(name: str) -> int:
        return sum(b.count(name) for b in backends)
    for family in (4, 6):
        for tcp in (False, True):
            name = f"seed{family}{int(tcp)}.example."
            assert query(proc.addr(family=family), name, tcp=tcp) is not None, (family, tcp)
            hit = query(proc.addr(family=family), name, tcp=tcp)
            assert hit is not None and hit.answer[0].ttl <= 300
            assert asked(name) == 1, (family, tcp)  # the second one was a cache hit
    assert proc.alive()
