"""pydist-key: fresh key lines, --check and --write."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from pydist.keytool import effective_key, main


def test_prints_a_fresh_key_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith('setKey("') and len(base64.b64decode(line[8:-2])) == 32


def test_check_valid_invalid_and_missing(tmp_path: Path) -> None:
    good = tmp_path / "good.conf"
    good.write_text(f'setKey("{base64.b64encode(bytes(32)).decode()}")\n')
    assert main(["--check", str(good)]) == 0
    short = tmp_path / "short.conf"
    short.write_text('setKey("YWJj")\n')
    assert main(["--check", str(short)]) == 1
    none = tmp_path / "none.conf"
    none.write_text('setSecurityPollSuffix("")\n')
    assert main(["--check", str(none)]) == 1


def test_first_decodable_key_wins_as_at_dnsdist_startup() -> None:
    first = base64.b64encode(b"\x01" * 32).decode()
    text, key, _ = effective_key(f'setKey("~bad")\nsetKey("{first}")\nsetKey("YWJj")\n')
    assert text == first and key == b"\x01" * 32


def test_write_replaces_and_keeps_backup(tmp_path: Path) -> None:
    conf = tmp_path / "d.conf"
    original = 'setSecurityPollSuffix("")\nsetKey("YWJj")\n'
    conf.write_text(original)
    assert main(["--write", str(conf)]) == 0
    assert (tmp_path / "d.conf.bak").read_text() == original
    assert "YWJj" not in conf.read_text() and main(["--check", str(conf)]) == 0
    bare = tmp_path / "bare.conf"
    bare.write_text('setSecurityPollSuffix("")')
    assert main(["--write", str(bare)]) == 0
    assert bare.read_text().startswith('setSecurityPollSuffix("")\nsetKey("')
