"""`pydist.trace(qname[, qtype[, options]])` on the console: one query through the running
rules, pools, policies and caches, traced as `pydist-test` traces it, with nothing sent and no
counter moved (pydist/testbench/bench.py, dry mode). Options: client, transport, do, edns,
bufsize, rd (as in a pydist-test case line)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.pydist_ns import add
from luaapi.convert import as_str


def register(rt: Any) -> None:
    def trace(qname: Any, qtype: Any = None, options: Any = None) -> None:
        from pydist.testbench.cases import CaseError, parse_case
        from pydist.testbench.bench import TestBench
        from pydist.testbench.report import describe
        words = [as_str(qname), as_str(qtype) if qtype is not None else "A"]
        if options is not None:
            words += [f"{k}={_word(v)}" for k, v in options.items()]
        try:
            case = parse_case(" ".join(words))
        except CaseError as e:
            rt.show(f"Error: {str(e).removeprefix('line 0: ')}\n")
            return
        bench = TestBench(rt.registry, dry=True)
        rt.show("\n".join(describe(bench.run(case))) + "\n")
    add(rt, "trace", trace)


def _word(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return "0"
    return str(value)
