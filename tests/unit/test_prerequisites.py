"""The session-start check names every absent prerequisite (so the suite fails, not skips)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import prerequisites


def test_absent_programs_and_corpus_are_named(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))           # nothing installed
    monkeypatch.setenv("PYDIST_CORPUS", str(tmp_path / "corpus"))
    lines = prerequisites.missing()
    for p in prerequisites.PROGRAMS:
        assert any(line.startswith(f"{p.name} (") and p.debian_package in line
                   for line in lines), p.name
    assert any("PYDIST_CORPUS" in line for line in lines)
    assert any("unshare" in line for line in lines)
    assert "PYDIST_TESTS_ALLOW_MISSING=1" in prerequisites.banner(lines)


def test_this_machine_has_everything() -> None:
    assert prerequisites.missing() == []
