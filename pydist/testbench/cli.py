"""`pydist-test`: a config's rules run on a file of cases or a pcap, no network.

Exit codes: 0 every expectation met, 1 one or more not met (each named), 2 the config or the
cases could not be read."""
from __future__ import annotations

import argparse
import sys

from pydist.registry import CHECK, Registry
from pydist.testbench.bench import TestBench, Trace
from pydist.testbench.cases import Case, CaseError, cases_from_pcap, parse_cases
from pydist.testbench.report import describe, failures

EPILOG = """case lines: QNAME [QTYPE] [key=value ...]; keys: client, transport (udp, tcp, dot, doh),
do, edns, bufsize, rd, backend (answer, nxdomain, servfail, refused, drop), and the expectations
expect (drop, answer, forward, cache-hit, no-server, truncated, or an rcode name), pool, server,
rule (position, name or UUID of the deciding query rule, or none)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pydist-test", epilog=EPILOG,
                                description="Run a dnsdist config's rules, pools, policies and "
                                            "cache on test queries, with no network.")
    p.add_argument("-C", "--config", required=True, help="the dnsdist.conf to test")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("cases", nargs="?", help="a file of cases ('-' for standard input)")
    src.add_argument("--pcap", help="take the queries of a pcap instead")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the failures")
    return p.parse_args(argv)


def load_config(path: str) -> Registry:
    """The config evaluated as `--check-config` does: nothing bound, nothing started."""
    from luaapi.runtime import ConfigError, LuaConfig
    reg = Registry(CHECK, log=lambda line: None)
    lua = LuaConfig(reg)
    try:
        lua.run_file(path)
    except ConfigError as e:
        raise CaseError("\n".join(e.lines)) from None
    return reg


def load_cases(args: argparse.Namespace) -> list[Case]:
    if args.pcap:
        return cases_from_pcap(args.pcap)
    try:
        text = sys.stdin.read() if args.cases == "-" else open(args.cases).read()
    except OSError as e:
        raise CaseError(f"cannot read {args.cases}: {e.strerror}") from None
    return parse_cases(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        reg = load_config(args.config)
        cases = load_cases(args)
    except CaseError as e:
        print(f"pydist-test: {e}", file=sys.stderr)
        return 2
    bench = TestBench(reg)
    failed = 0
    for case in cases:
        trace = bench.run(case)
        failed += report(trace, args.quiet)
    checked = sum(1 for c in cases if c.expect)
    print(f"{len(cases)} cases, {checked} with expectations, {failed} failed")
    return 1 if failed else 0


def report(trace: Trace, quiet: bool) -> int:
    """Print a trace; 1 when an expectation was not met."""
    missed = failures(trace)
    if missed or not quiet:
        for line in describe(trace):
            print(line)
        for m in missed:
            print(f"  FAIL {trace.case.label} ({trace.case.text}): {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
