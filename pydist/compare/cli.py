"""`pydist-compare`: the command line of the migration comparer."""
from __future__ import annotations

import argparse
import ipaddress
import random
import shutil
import sys
from pathlib import Path

from pydist.compare.report import EXIT_CODES, summary, write_json
from pydist.compare.session import Options, run
from pydist.compare.sides import default_pydist_command, exit_on_termination, split_command
from pydist.compare.traffic import PcapError, read_pcap, read_query_file
from pydist.compare.wrapper import normalize_upstream

DEFAULT_QUERIES = ["example.com A", "example.net AAAA", "example.org TXT", "nxdomain.invalid A",
                   "example.com A +tcp", "example.com A +do", "example.com A"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pydist-compare",
        description="Run one dnsdist configuration on real dnsdist and on pydist, replay traffic "
                    "to both, and list every difference.")
    parser.add_argument("-C", "--config", required=True, help="the dnsdist configuration (never modified)")
    parser.add_argument("--dnsdist", default="dnsdist", help="real dnsdist binary (default: from PATH)")
    parser.add_argument("--pydist", default=None,
                        help="pydist command (default: pydist from PATH, else python3 -m pydist)")
    parser.add_argument("--queries", action="append", default=[], metavar="FILE",
                        help="query file: 'name type [+tcp] [+do] [+cd] [-rd] [src=127.0.0.x]' per line")
    parser.add_argument("--pcap", action="append", default=[], metavar="FILE", help="pcap of client queries")
    parser.add_argument("--upstream", action="append", default=[], metavar="ADDR=ADDR",
                        help="map an upstream to a loopback stand-in, e.g. 8.8.8.8:853=127.0.0.1:5301")
    parser.add_argument("--all-upstreams-to-responder", action="store_true",
                        help="also replace loopback upstreams by the built-in responder")
    parser.add_argument("--console", action="append", default=[], metavar="CMD",
                        help="console command whose output is compared, e.g. 'showServers()'")
    parser.add_argument("--metrics", action="store_true", help="compare /metrics after the replay")
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here")
    parser.add_argument("--rate", type=float, default=200.0, help="queries per second (default 200)")
    parser.add_argument("--timeout", type=float, default=1.5, help="seconds before a query counts as dropped")
    parser.add_argument("--start-timeout", type=float, default=20.0,
                        help="seconds a side may take to start listening (default 20)")
    parser.add_argument("--ttl-tolerance", type=int, default=1, help="TTL slack in seconds (default 1)")
    parser.add_argument("--extra-lua-a", default="", help=argparse.SUPPRESS)
    parser.add_argument("--extra-lua-b", default="", help=argparse.SUPPRESS)
    return parser


def parse_upstreams(items: list[str]) -> dict[str, str]:
    """`FROM=TO` pairs; TO must be on loopback so no packet leaves the machine."""
    mapping: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--upstream {item!r}: expected FROM=TO")
        src, dst = item.split("=", 1)
        dst = normalize_upstream(dst)
        host = dst.rsplit(":", 1)[0].strip("[]")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"--upstream {item!r}: the stand-in must be a loopback address")
        mapping[normalize_upstream(src)] = dst
    return mapping


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_on_termination()
    config = Path(args.config).resolve()
    if not config.is_file():
        print(f"pydist-compare: cannot read configuration {args.config}", file=sys.stderr)
        return 2
    if shutil.which(split_command(args.dnsdist, ["dnsdist"])[0]) is None:
        print(f"pydist-compare: dnsdist not found: {args.dnsdist}", file=sys.stderr)
        return 2
    try:
        upstreams = parse_upstreams(args.upstream)
    except ValueError as exc:
        print(f"pydist-compare: {exc}", file=sys.stderr)
        return 2
    queries, bad = [], []
    rng = random.Random(53)
    for path in args.queries:
        try:
            got, errs = read_query_file(path, rng)
        except OSError as exc:
            print(f"pydist-compare: cannot read query file {path}: {exc.strerror}", file=sys.stderr)
            return 2
        queries += got
        bad += errs
    for path in args.pcap:
        try:
            got, errs = read_pcap(path)
        except PcapError as exc:
            print(f"pydist-compare: {exc}", file=sys.stderr)
            return 2
        queries += got
        bad += errs
    if not args.queries and not args.pcap:
        from pydist.compare.traffic import parse_query_line
        queries = [parse_query_line(line, f"built-in:{i + 1}", rng) for i, line in enumerate(DEFAULT_QUERIES)]
    for item in bad:
        print(f"pydist-compare: bad input at {item.origin}: {item.reason}", file=sys.stderr)
    opts = Options(config=config, dnsdist=split_command(args.dnsdist, ["dnsdist"]),
                   pydist=split_command(args.pydist, default_pydist_command()), queries=queries,
                   bad_input=bad, upstreams=upstreams, consoles=args.console, metrics=args.metrics,
                   map_loopback=args.all_upstreams_to_responder, rate=args.rate, timeout=args.timeout,
                   start_timeout=args.start_timeout,
                   ttl_tolerance=args.ttl_tolerance, extra_lua_a=args.extra_lua_a, extra_lua_b=args.extra_lua_b)
    outcome = run(opts)
    print(summary(outcome, args.config))
    if args.report:
        write_json(outcome, args.config, args.report)
    return EXIT_CODES[outcome.verdict]
