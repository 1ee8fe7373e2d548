"""Every corpus config gets the --check-config verdict real dnsdist 1.7.3 gave (expected.tsv).

The configs are copied to a temporary folder that becomes the working directory, and the
environment variables the configs read through os.getenv() are unset, as check-all.sh does.
All checks run at once in a pool at the first test, then each test reads its verdict.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("PYDIST_CORPUS", REPO.parent / "shared" / "corpus"))
ENV_UNSET = ("BACKEND DEBUG DNSDIST_ALIDNS_1 DNSDIST_ALIDNS_2 DNSDIST_API_KEY "
             "DNSDIST_MIHOMO_ADDRESS DNSDIST_STALE_CACHE_ENABLED DNSDIST_WEBSERVER_PASSWORD "
             "DNSDIST_WG_DNS_IP DNSDIST_WG_NETWORK EXPURGATE_DNS_SERVERS EXPURGATE_ZONE LOG_ALL "
             "PORT RECURSOR_DNS_SERVERS TLS_ENABLED WEB_PASSWORD").split()


def _expected() -> list[tuple[str, str]]:
    path = CORPUS / "expected.tsv"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, verdict = line.split("\t")[:2]
            rows.append((name, verdict))
    return rows


EXPECTED = _expected()
pytestmark = pytest.mark.skipif(not EXPECTED, reason="corpus not found")


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    work = tmp_path_factory.mktemp("corpus") / "configs"
    shutil.copytree(CORPUS / "configs", work)
    env = {k: v for k, v in os.environ.items() if k not in ENV_UNSET}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")

    def check(name: str) -> tuple[str, tuple[str, str]]:
        p = subprocess.run([sys.executable, "-m", "pydist", "--check-config", "-C", name],
                           cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, errors="replace", timeout=60)
        out = (p.stdout + p.stderr).splitlines()
        return name, ("ok" if p.returncode == 0 else "error", out[0] if out else "")
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
        return dict(pool.map(check, [n for n, _ in EXPECTED]))


@pytest.mark.parametrize("name,expected", EXPECTED, ids=[n for n, _ in EXPECTED])
def test_verdict_matches_dnsdist(verdicts: dict[str, tuple[str, str]], name: str,
                                 expected: str) -> None:
    got, first_line = verdicts[name]
    assert got == expected, f"{name}: first output line: {first_line}"


def test_ok_configs_print_only_the_ok_line_when_nothing_is_logged(
        verdicts: dict[str, tuple[str, str]]) -> None:
    """Unsupported directives never warn in --check-config (the OK line stays the output)."""
    name = "56-ansible-webserver-five-args.conf"
    if name in verdicts:
        assert verdicts[name] == ("ok", f"Configuration '{name}' OK!")


FIRST_LINE_CONFIGS = ("08-boisetech-recursive-pool.conf", "57-ansible-positional-packetcache.conf",
                      "62-puppet-concat-legacy-api.conf",
                      "65-dnsprivacy-perf-2018-sharded-listeners.conf",
                      "26-doq-doh3-dynblock.conf")


@pytest.mark.skipif(not shutil.which("dnsdist"), reason="dnsdist not installed")
@pytest.mark.parametrize("name", FIRST_LINE_CONFIGS)
def test_first_line_as_dnsdist(verdicts: dict[str, tuple[str, str]], name: str,
                               tmp_path: Path) -> None:
    """The line users see first is dnsdist's own (legacy positional forms, lenient setKey,
    setVerbose which 1.7.3 does not have)."""
    shutil.copy(CORPUS / "configs" / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ENV_UNSET}
    p = subprocess.run(["dnsdist", "--check-config", "-C", name], cwd=tmp_path, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=60)
    out = (p.stdout + p.stderr).splitlines()
    assert verdicts[name][1] == out[0]
