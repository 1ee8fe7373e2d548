"""dynBlockRulesGroup():setMasks(v4, v6, port), pydist against real dnsdist 1.7.3: with port
bits the block covers the client's address and the top bits of its source port only, so the
same address from a port outside that range is served; showDynBlocks() and the insertion log
line name the range as dnsdist does (`address:port/bits`)."""
from __future__ import annotations

import random
import re
import socket

import dns.message

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import IMPLS, poll_until, run_cli
from tests.helpers.conf import console_prelude

CONF = console_prelude() + """local g = dynBlockRulesGroup()
g:setQueryRate(1, 5, "Exceeded query rate", 60, DNSAction.Refused)
g:setMasks(32, 128, {bits})
function maintenance() g:apply() end
"""


def _rcode_from(where: tuple[str, int], sport: int) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", sport))
        s.settimeout(1.5)
        s.sendto(dns.message.make_query("a.test.", "A").to_wire(), where)
        try:
            return dns.message.from_wire(s.recv(4096)).rcode()
        except TimeoutError:
            return None


def _run(proc, base: int) -> list:
    a, b, c = base + 1, base + 2, base + 0x301        # same /16 port? /8? neither
    for _ in range(12):
        _rcode_from(proc.addr(), a)

    def shown() -> str | None:
        out = run_cli(proc.impl, ["-C", str(proc.conf), "-e", "showDynBlocks()"]).stdout
        return out if "Exceeded" in out else None
    table = poll_until(shown, timeout=6)
    rcodes = [_rcode_from(proc.addr(), p) for p in (a, b, c)]
    inserted = proc.wait_for("Inserting dynamic block")

    def norm(text: str) -> str:
        text = text.replace(str(a), "A").replace(str(base), "BASE")
        return re.sub(r" +\d+ +(\d+ (true|false))", r" S \1", text)   # seconds left vary
    return [rcodes, norm(table).splitlines()[1:], norm(inserted)]


def test_dynblock_port_masks_as_dnsdist(start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    for bits in (16, 8, 0):
        base = random.randrange(40000, 60000) & ~0xFFF      # the same ports on both sides
        views = {}
        for impl in IMPLS:
            backend = responder_factory()
            proc = start_proc(impl, CONF, {"backend": backend.address, "bits": bits})
            views[impl] = _run(proc, base)
            proc.stop()
        assert views["pydist"] == views["dnsdist"], bits
