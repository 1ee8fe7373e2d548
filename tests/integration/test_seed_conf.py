"""conf.d/seed.conf, rewritten to loopback only, serves UDP and TCP and caches."""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import BOTH, ResponderFactory, Starter
from tests.helpers.pydist_proc import query
from tests.helpers.responder import Responder

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


def loopback_seed(text: str, make_backend: Callable[[str], Responder]) -> str:
    """Every listener on `{port}` (non-loopback ones dropped), the console on `{portctl}`, every
    newServer a plain (no TLS) server at a fresh responder of the same family."""
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
            backend = make_backend("::1" if ":" in s.group(1) else "127.0.0.1")
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
    assert "10.254.1.1" not in conf and "tls=" not in conf and "853" not in conf
    assert 'addACL("0.0.0.0/0")' in conf and "newPacketCache(100000" in conf
    assert conf.count("newServer(") == text.count("newServer(")
    for host in re.findall(r'address="\[?([^"\]]+?)\]?:\d+"', conf):
        assert _is_loopback(host)


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
