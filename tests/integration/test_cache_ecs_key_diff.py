"""The packet cache key of queries that differ only in their ECS option, pydist against real
dnsdist 1.7.3: the keys in `dump()`, the cache counters and the answers, over UDP, TCP and DoH,
with parseECS off and on and with ECS among skipOptions.

Observed on the binary: 1.7.3 hashes the ECS option like any other option (parseECS or not), so
two subnets make two entries; only `skipOptions={8}` leaves its content out of the hash, and then
without parseECS the two queries share one entry."""
from __future__ import annotations

import re
from pathlib import Path

import dns.edns
import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.doh import b64, client, do
from tests.helpers.pydist_proc import IMPLS, run_cli, send_message
from tests.integration.test_ecs_diff import echo_ecs

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addDOHLocal("127.0.0.1:{portdoh}", nil, nil, {"/dns-query"})
controlSocket("127.0.0.1:{portctl}")
setKey("MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=")
newServer({address="{backend}"})
pc = newPacketCache(100, {options})
getPool(""):setCache(pc)
"""
COOKIE = (dns.edns.GenericOption(10, b"\x01" * 8), dns.edns.GenericOption(10, b"\x02" * 8))
NSID = dns.edns.GenericOption(3, b"")


def _option_sets() -> list[list[dns.edns.Option]]:
    subnets = ("192.0.2.0/24", "198.51.100.0/24", "10.0.0.0/16")
    out: list[list[dns.edns.Option]] = []
    for i, net in enumerate(subnets):
        ecs = dns.edns.ECSOption.from_text(net)
        out += [[ecs], [COOKIE[i % 2], ecs], [ecs, COOKIE[i % 2]], [NSID, ecs]]
    return out


def _run(proc, tmp: Path) -> list:
    answers = []
    doh = f"http://127.0.0.1:{proc.addr('portdoh')[1]}"
    for i, options in enumerate(_option_sets()):
        q = dns.message.make_query(f"k{i % 4}.test.", "TXT", use_edns=0, options=options)
        for tcp in (False, True):
            r = send_message(proc.addr(), q, tcp)
            assert r is not None
            answers.append([str(x) for x in r.answer])
        q.id = 0
        with client(False) as c:
            answers.append(do(c, doh, "GET", "/dns-query?dns=" + b64(q.to_wire())).summary())
    dump = tmp / f"{proc.impl}-{len(list(tmp.glob('*.dump')))}.dump"
    stats = run_cli(proc.impl, ["-C", str(proc.conf), "-e",
                                f"pc:printStats() pc:dump('{dump}')"]).stdout
    keys = sorted(re.sub(r"^(\S+) \d+|, added \d+", r"\1", ln)      # TTLs and times vary
                  for ln in dump.read_text().splitlines()[2:])
    return answers + [stats, keys]


def test_cache_key_and_ecs_as_dnsdist(start_proc: Starter, responder_factory: ResponderFactory,
                                      tmp_path: Path) -> None:
    for options in ("{}", "{parseECS=true}", "{skipOptions={8}}",
                    "{parseECS=true, skipOptions={8}}"):
        views = {}
        for impl in IMPLS:
            backend = responder_factory(echo_ecs)
            proc = start_proc(impl, CONF, {"backend": backend.address, "options": options})
            views[impl] = _run(proc, tmp_path)
            proc.stop()
        for mine, theirs in zip(views["pydist"], views["dnsdist"], strict=True):
            assert mine == theirs, options
