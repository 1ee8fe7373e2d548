"""Query counting (setQueryCount, setQueryCountFilter, getQueryCounters, clearQueryCounters)
against real dnsdist 1.7.3: the same records and counts, cache hits included, a Lua filter's
keys, the limit, clearing and disabling. The order of the records is dnsdist's hash map's, so
records are compared as sets."""
from __future__ import annotations

import re

import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import query, run_cli

CONF = console_prelude(cache=100) + "setQueryCount(true)\n"


def _console(proc, cmd: str) -> str:
    return run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd]).stdout


def _records(text: str) -> tuple[str, set[str]]:
    lines = text.splitlines()
    return lines[0], {re.sub(r"^\d+\s+", "", ln) for ln in lines[1:]}


@pytest.mark.parametrize("impl", BOTH)
def test_counters_as_dnsdist(impl: str, start_proc: Starter, responder) -> None:
    proc = start_proc(impl, CONF, {"backend": responder.address})
    for name in ("a.test.", "b.test.", "a.test.", "A.test."):   # the last two: cache hits
        assert query(proc.addr(), name) is not None
    head, records = _records(_console(proc, "getQueryCounters()"))
    assert head == "query counting is currently: enabled (3 records in buffer)"
    assert records == {"a.test: 2 request(s)", "b.test: 1 request(s)", "A.test: 1 request(s)"}
    assert len(_console(proc, "getQueryCounters(1)").splitlines()) == 2
    _console(proc, 'setQueryCountFilter(function(dq) '
                   'return dq.qtype == DNSQType.A, "k-" .. dq.qname:toString() end)')
    assert query(proc.addr(), "c.test.") is not None
    assert query(proc.addr(), "c.test.", "AAAA") is not None
    head, records = _records(_console(proc, "getQueryCounters()"))
    assert head.endswith("(4 records in buffer)") and "k-c.test.: 1 request(s)" in records
    assert _console(proc, "clearQueryCounters()") == \
        "4 records cleared from query counter buffer\n"
    _console(proc, "setQueryCount(false)")
    assert query(proc.addr(), "d.test.") is not None
    assert _console(proc, "getQueryCounters()") == \
        "query counting is currently: disabled (0 records in buffer)\n"
