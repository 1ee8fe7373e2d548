"""Helpers for tools/bench: configs, query files, dnsperf parsing, processes, statistics, tables.

Kept apart from the script so the parsing and statistics can be unit-tested without running
anything (tests/unit/test_bench_parse.py).
"""
