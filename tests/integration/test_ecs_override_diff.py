"""ECS override, pydist against real dnsdist 1.7.3: the client's ECS option is removed and the
new one appended after the client's other options, so the backend sees them in that order; the
client's answer as dnsdist gives it back."""
from __future__ import annotations

import itertools

import dns.edns
import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import IMPLS, send_message

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}", useClientSubnet=true})
{extra}
"""
CONFIGS = {
    "global": "setECSOverride(true)",
    "action": 'addAction(AllRule(), SetECSOverrideAction(true))',
}
# the same size as the option dnsdist puts in (127.0.0.0/24), shorter, longer
CLIENT_ECS = ("192.0.2.0/24", "10.0.0.0/8", "2001:db8::/56", "192.0.2.1/32")


def _options(ecs_first: bool, client_ecs: str) -> list[dns.edns.Option]:
    ecs = dns.edns.ECSOption.from_text(client_ecs)
    cookie = dns.edns.GenericOption(10, b"\x01" * 8)
    nsid = dns.edns.GenericOption(3, b"")
    return [ecs, cookie, nsid] if ecs_first else [cookie, ecs, nsid]


def _run(proc, backend) -> list:
    seen = []
    for tcp in (False, True):
        for ecs_first, client_ecs in itertools.product((True, False), CLIENT_ECS):
            q = dns.message.make_query(f"o{int(ecs_first)}{int(tcp)}.test.", "A", use_edns=0,
                                       options=_options(ecs_first, client_ecs))
            r = send_message(proc.addr(), q, tcp)
            assert r is not None
            got = backend.raw[-1][2]
            start = got.index(b"\x00\x00\x29")     # the root-owned OPT RR
            answer = r.to_text().split("\n", 1)[1]          # without the ID line
            seen.append((tcp, ecs_first, client_ecs, got[start:].hex(),
                         [(o.otype, o.to_wire().hex()) for o in r.options], answer))
    return seen


def test_ecs_override_appends_option(start_proc: Starter,
                                     responder_factory: ResponderFactory) -> None:
    for name, extra in CONFIGS.items():
        views = {}
        for impl in IMPLS:
            backend = responder_factory()
            backend.echo_opt = True
            proc = start_proc(impl, CONF, {"backend": backend.address, "extra": extra})
            views[impl] = _run(proc, backend)
            proc.stop()
        for a, b in zip(views["pydist"], views["dnsdist"]):
            assert a == b, name
