"""`python3 -m pydist.compare.corpus`: run the comparer over every corpus config dnsdist accepts.

Prints one line per config and the table: equivalent / different (kinds) / failing to start / not run.
"""
from __future__ import annotations

import argparse
import ipaddress
import random
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from pydist.compare.report import summary
from pydist.compare.session import Options, Outcome, run
from pydist.compare.sides import default_pydist_command, exit_on_termination, split_command
from pydist.compare.traffic import Query, parse_query_line

# configs that reach outside the process while loading: never started
OUTSIDE_ACCESS = re.compile(r"io\.popen|os\.execute|ffi\.load|require\s*\(?\s*['\"](socket|http|ssl)")
# variables the corpus configs read with os.getenv(), unset so results do not depend on the caller
ENV_UNSET = ("BACKEND DEBUG DNSDIST_ALIDNS_1 DNSDIST_ALIDNS_2 DNSDIST_API_KEY DNSDIST_MIHOMO_ADDRESS "
             "DNSDIST_STALE_CACHE_ENABLED DNSDIST_WEBSERVER_PASSWORD DNSDIST_WG_DNS_IP DNSDIST_WG_NETWORK "
             "EXPURGATE_DNS_SERVERS EXPURGATE_ZONE LOG_ALL PORT RECURSOR_DNS_SERVERS TLS_ENABLED WEB_PASSWORD").split()
GENERIC = ["example.com A", "example.com A", "example.net AAAA", "example.org TXT", "nxdomain.invalid A",
           "example.com MX", "example.com A +tcp", "example.net AAAA +tcp", "example.com A +do",
           "example.com A -rd", "example.com ANY", "servfail.example.com A"]
# rate-dependent rules make answers depend on timing: replay those configs below their limits
RATE_SENSITIVE = re.compile(r"QPS|qps|exceedQRate|exceedNXDOMAINs|exceedServFails|dynBlockRulesGroup|DelayAction")
_QUOTED_NAME = re.compile(r"""["']\*?\.?([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+\.?)["']""")
_NOT_A_NAME = re.compile(r"\.(conf|pem|crt|key|txt|lua|acl|cdb|log|json|so|sock|db|list|d)\.?$", re.I)


def default_corpus() -> Path:
    """The shared corpus beside the checkout (override with --corpus)."""
    return Path(__file__).resolve().parents[3] / "shared" / "corpus"


def names_in(text: str, limit: int = 12) -> list[str]:
    """Domain names the config mentions (rule suffixes, spoofed names), not files or addresses."""
    found: list[str] = []
    for match in _QUOTED_NAME.finditer(text):
        name = match.group(1)
        try:
            ipaddress.ip_address(name.rstrip("."))
            continue
        except ValueError:
            pass
        if _NOT_A_NAME.search(name) or name.replace(".", "").isdigit() or name.lower() in found:
            continue
        found.append(name.lower())
    return found[:limit]


def generated_queries(text: str, rng: random.Random) -> list[Query]:
    """A query set for one config: its own names over UDP and TCP, plus generic ones."""
    lines = list(GENERIC)
    for name in names_in(text):
        lines += [f"{name} A", f"{name} AAAA", f"{name} A +tcp"]
    if "addTLSLocal" in text:   # DoT listeners are compared too (throwaway cert if needed)
        lines += ["example.com A +tls", "example.net AAAA +tls +do"]
    if "addDOHLocal" in text:   # and DoH ones (plain HTTP when the certificate is not here)
        lines += ["example.com A +https", "example.net AAAA +https +do"]
    return [parse_query_line(line, f"generated:{i + 1}", rng) for i, line in enumerate(lines)]


def classify(outcome: Outcome) -> str:
    """The table cell of one config."""
    if outcome.verdict == "failed":
        return "failing to start: " + ", ".join(f"{f['side']} ({f['stage']})" for f in outcome.failures)
    if outcome.verdict == "different":
        return "different: " + ", ".join(sorted({f.kind for f in outcome.findings}))
    return "equivalent" + (f" ({outcome.note})" if outcome.note else "")


def outcome_is_clean(cell: str) -> bool:
    return cell.startswith("equivalent") or cell.startswith("not run")


def main(argv: list[str] | None = None) -> int:
    exit_on_termination()
    parser = argparse.ArgumentParser(prog="python3 -m pydist.compare.corpus", description=__doc__)
    parser.add_argument("--pydist", default=None, help="pydist command (default: pydist, else python3 -m pydist)")
    parser.add_argument("--dnsdist", default="dnsdist")
    parser.add_argument("--corpus", type=Path, default=default_corpus(), help="corpus folder (configs/, expected.tsv)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the findings of each config")
    parser.add_argument("--only", default="", help="regular expression: run only matching config names")
    args = parser.parse_args(argv)
    expected = {}
    for row in (args.corpus / "expected.tsv").read_text().splitlines():
        if "\t" in row and not row.startswith("#"):
            name, verdict = row.split("\t", 1)
            expected[name] = verdict.strip()
    pydist = split_command(args.pydist, default_pydist_command())
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="pydist-compare-corpus-") as tmp:
        configs = Path(tmp) / "configs"
        shutil.copytree(args.corpus / "configs", configs)
        for name in sorted(expected):
            if expected[name] != "ok" or not re.search(args.only, name):
                continue
            path = configs / name
            text = path.read_text(errors="replace")
            outside = OUTSIDE_ACCESS.search(text)
            if outside:
                cell = f"not run: uses {outside.group(0).strip()}"
            else:
                opts = Options(config=path, dnsdist=split_command(args.dnsdist, ["dnsdist"]), pydist=pydist,
                               queries=generated_queries(text, random.Random(53)), map_loopback=True,
                               consoles=["showServers()", "showRules()"], metrics=True, timeout=1.0,
                               rate=4.0 if RATE_SENSITIVE.search(text) else 200.0,
                               env={k: "\0unset" for k in ENV_UNSET})
                outcome = run(opts)
                cell = classify(outcome)
            rows.append((name, cell))
            print(f"{name:52} {cell}", flush=True)
            if args.verbose and not outcome_is_clean(cell):
                print("\n".join("    " + line for line in summary(outcome, name).splitlines()[2:]), flush=True)
    totals = Counter(cell.split(":")[0].split(" (")[0] for _, cell in rows)
    kinds = Counter(k.strip() for _, cell in rows if cell.startswith("different:")
                    for k in cell.split(":", 1)[1].split(","))
    print()
    print("| result | configs |")
    print("|---|---|")
    for key in ("equivalent", "different", "failing to start", "not run"):
        print(f"| {key} | {totals.get(key, 0)} |")
    if kinds:
        print()
        print("| kind of difference | configs |")
        print("|---|---|")
        for kind, count in kinds.most_common():
            print(f"| {kind} | {count} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
