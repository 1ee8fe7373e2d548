"""The fixed-width result table and the --json document."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .runner import SideResult
from .scenarios import Scenario
from .stats import ratio

COLUMNS = (
    ("scenario", 10), ("qps pydist", 11), ("qps dnsdist", 11), ("ratio", 6),
    ("µs/q pydist", 11), ("µs/q dnsdist", 12), ("µs ratio", 8),
    ("RSS pydist", 10), ("RSS dnsdist", 11), ("p50 µs py/dd", 12), ("p99 µs py/dd", 12),
)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}M"


def _pair(a: float | None, b: float | None) -> str:
    if a is None and b is None:
        return "-"
    return f"{_num(a, '.0f')}/{_num(b, '.0f')}"


def row(name: str, py: SideResult, dd: SideResult) -> list[str]:
    """One table row from both sides' medians."""
    p, d = py.medians(), dd.medians()
    return [
        name, _num(p["qps"], ",.0f"), _num(d["qps"], ",.0f"), _num(ratio(p["qps"], d["qps"]), ".2f"),
        _num(p["us_per_query"], ".2f"), _num(d["us_per_query"], ".2f"),
        _num(ratio(p["us_per_query"], d["us_per_query"]), ".2f"),
        _mib(p["rss_kib"]), _mib(d["rss_kib"]),
        _pair(p["p50_us"], d["p50_us"]), _pair(p["p99_us"], d["p99_us"]),
    ]


def table(rows: Sequence[Sequence[str]], sides: tuple[str, str] = ("pydist", "dnsdist")) -> str:
    """Fixed-width text: a header line, a rule and one line per row; ``sides`` name the two
    compared servers in the header (tools/bench --cache compares pydist with itself)."""
    columns = COLUMNS
    if sides != ("pydist", "dnsdist"):
        columns = tuple((h.replace("pydist", sides[0]).replace("dnsdist", sides[1])
                         .replace("py/dd", f"{sides[0]}/{sides[1]}"), w) for h, w in COLUMNS)
    widths = [max(w, len(columns[i][0]), *(len(r[i]) for r in rows)) if rows else w
              for i, (_, w) in enumerate(COLUMNS)]
    def fmt(cells: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt([h for h, _ in columns]), "-+-".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def rss_growth_notes(results: dict[str, dict[str, SideResult]]) -> list[str]:
    """For scenarios that restart servers (cache-fill): RSS before the run, after, and growth."""
    notes = []
    for name, sides in results.items():
        parts = []
        for label, side in sides.items():
            m = side.medians()
            if m["rss_idle_kib"] is not None and m["rss_kib"] is not None:
                parts.append(f"{label} {_mib(m['rss_idle_kib'])} -> {_mib(m['rss_kib'])} "
                             f"(+{_mib(m['rss_kib'] - m['rss_idle_kib'])})")
        if parts:
            notes.append(f"# {name} RSS before -> after: " + ", ".join(parts))
    return notes


def noise_notes(results: dict[str, dict[str, SideResult]], threshold: float = 0.05) -> list[str]:
    """Warn where something else used the server core during a run: its QPS is then suspect."""
    notes = []
    for name, sides in results.items():
        worst = {label: max((r.other_load or 0.0) for r in side.runs)
                 for label, side in sides.items() if side.runs}
        if any(v > threshold for v in worst.values()):
            parts = ", ".join(f"{label} up to {v:.0%}" for label, v in worst.items())
            notes.append(f"# {name}: other processes used the server core ({parts}); "
                         "QPS is suspect there, µs/q less so")
    return notes


def rcode_notes(results: dict[str, dict[str, SideResult]]) -> list[str]:
    """Every answer should be NOERROR; say so where one was not (a wrong answer is fast too)."""
    notes = []
    for name, sides in results.items():
        for label, side in sides.items():
            bad: dict[str, int] = {}
            for r in side.runs:
                for code, n in r.rcodes.items():
                    if code != "NOERROR":
                        bad[code] = bad.get(code, 0) + n
            if bad:
                notes.append(f"# {name} {label}: non-NOERROR answers: "
                             + ", ".join(f"{c} {n}" for c, n in sorted(bad.items())))
    return notes


def to_json(header: dict[str, object], scenarios: Sequence[Scenario],
            results: dict[str, dict[str, SideResult]]) -> str:
    """The whole benchmark as JSON: header, then per scenario both sides' runs and medians."""
    doc: dict[str, object] = dict(header)
    out = {}
    for sc in scenarios:
        if sc.name not in results:
            continue
        sides = results[sc.name]
        py, dd = sides["pydist"].medians(), sides["dnsdist"].medians()
        out[sc.name] = {
            "description": sc.description,
            "pydist": sides["pydist"].to_json(),
            "dnsdist": sides["dnsdist"].to_json(),
            "ratio_qps": ratio(py["qps"], dd["qps"]),
            "ratio_us_per_query": ratio(py["us_per_query"], dd["us_per_query"]),
            "ratio_rss": ratio(py["rss_kib"], dd["rss_kib"]),
        }
    doc["scenarios"] = out
    return json.dumps(doc, indent=2)
