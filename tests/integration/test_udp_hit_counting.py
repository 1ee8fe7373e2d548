"""Cache hits answered in the UDP drain loop are counted even when a later query of the same
batch took the full path (it flushes the batch's query count): found by the worker tests,
where a hit and the next query often share a batch."""
from __future__ import annotations

import re
import select
import socket

import dns.message

from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query, run_cli


def test_hit_then_miss_in_one_batch_both_counted(start_proc, responder):
    p = start_proc("pydist", console_prelude(cache=1000), {"backend": responder.address})
    assert query(p.addr(), "hot.example.") is not None          # cached (a miss)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    rounds = 30
    try:
        for i in range(rounds):      # a hit and a miss back to back: often one batch
            hot = dns.message.make_query("hot.example.", "A")
            cold = dns.message.make_query(f"cold{i}.example.", "A")
            s.sendto(hot.to_wire(), p.addr())
            s.sendto(cold.to_wire(), p.addr())
            for _ in range(2):
                assert select.select([s], [], [], 3)[0], "an answer is missing"
                s.recv(4096)
    finally:
        s.close()
    out = run_cli("pydist", ["-C", str(p.conf), "-e", "dumpStats()"]).stdout
    st = dict(re.findall(r"(\S+)\s*\t\s*(\S+)", out))
    assert (int(st["cache-hits"]), int(st["cache-misses"])) == (rounds, rounds + 1), st
