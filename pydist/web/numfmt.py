"""Numbers as dnsdist prints them in /metrics: C++ ostream defaults (integers as integers,
doubles with 6 significant digits, e.g. `0.00899035`, `1e+06`)."""
from __future__ import annotations


def cpp_number(value: float) -> str:
    if type(value) is int:  # the common case first: /metrics prints thousands of these
        return str(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}"


def json_number(value: float) -> float | int:
    """JSON keeps integral figures integral (dnsdist's counters are integers)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    return value
