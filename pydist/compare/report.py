"""The human summary (stdout) and the machine-readable JSON report."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict

from pydist.compare.session import Outcome

EXAMPLES = 3
EXIT_CODES = {"equivalent": 0, "different": 1, "failed": 2}


def to_json(outcome: Outcome, config: str) -> dict:
    """The report as plain data."""
    counts = Counter(f.kind for f in outcome.findings)
    return {
        "config": config,
        "verdict": outcome.verdict,
        "exit_code": EXIT_CODES[outcome.verdict],
        "note": outcome.note,
        "queries_sent": outcome.queries_sent,
        "counts": dict(sorted(counts.items())),
        "differences": [asdict(f) for f in outcome.findings],
        "not_comparable": outcome.not_comparable,
        "bad_input": [asdict(b) for b in outcome.bad_input],
        "failures": outcome.failures,
    }


def summary(outcome: Outcome, config: str) -> str:
    """A short account: verdict, counts by kind, first examples with the query that shows them."""
    lines = [f"pydist-compare: {config}: {outcome.verdict.upper()}"
             + (f" ({outcome.note})" if outcome.note else ""),
             f"  queries replayed: {outcome.queries_sent}"]
    for failure in outcome.failures:
        lines.append(f"  FAILED: {failure['side']} at {failure['stage']}: {failure['reason']}")
        log = failure.get("log", "").strip().splitlines()
        lines += [f"    | {line}" for line in log[-20:]] or ["    | (no output)"]
    by_kind: dict[str, list] = defaultdict(list)
    for finding in outcome.findings:
        by_kind[finding.kind].append(finding)
    if by_kind:
        lines.append("  differences by kind:")
    for kind in sorted(by_kind):
        found = by_kind[kind]
        lines.append(f"    {kind}: {len(found)}")
        for finding in found[:EXAMPLES]:
            lines.append(f"      - {finding.detail}")
            lines.append(f"        shown by: {finding.where}")
    if outcome.not_comparable:
        lines.append("  not comparable (left out of the comparison):")
        lines += [f"    - {text}" for text in outcome.not_comparable]
    if outcome.bad_input:
        lines.append(f"  bad input ({len(outcome.bad_input)} skipped):")
        lines += [f"    - {b.origin}: {b.reason}" for b in outcome.bad_input[:10]]
    return "\n".join(lines)


def write_json(outcome: Outcome, config: str, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(to_json(outcome, config), handle, indent=2)
        handle.write("\n")
