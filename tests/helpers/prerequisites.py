"""What the test suite needs besides Python packages, checked once at session start: a missing
prerequisite stops the run with a loud message naming it and how to get it, instead of tests
skipping quietly (a green run that compared nothing with dnsdist would be a lie)."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DNSDIST_VERSION = "dnsdist 1.7.3 "
ALLOW_MISSING = "PYDIST_TESTS_ALLOW_MISSING"


@dataclass(frozen=True)
class Prerequisite:
    name: str
    debian_package: str
    why: str


PROGRAMS = (
    Prerequisite("dnsdist", "dnsdist", "the oracle of every differential test (1.7.3)"),
    Prerequisite("dnsperf", "dnsperf", "load and benchmark tests"),
    Prerequisite("kdig", "knot-dnsutils", "DoT and DoH client tests"),
    Prerequisite("dig", "bind9-dnsutils", "client tests"),
    Prerequisite("taskset", "util-linux", "CPU pinning of benchmark runs"),
    Prerequisite("chromium", "chromium", "the dashboard test in headless Chromium"),
    Prerequisite("promtool", "prometheus", "`promtool check metrics` on /metrics"),
)


def corpus_dir() -> Path:
    """Real-world configs with dnsdist's verdicts: $PYDIST_CORPUS, else ../shared/corpus."""
    return Path(os.environ.get("PYDIST_CORPUS", REPO.parent / "shared" / "corpus"))


def _dnsdist_version() -> str:
    try:
        res = subprocess.run(["dnsdist", "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout.split("\n", 1)[0]


def _private_mount_namespace() -> bool:
    try:
        res = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                             capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def missing() -> list[str]:
    """One line per absent prerequisite."""
    out = [f"{p.name} ({p.why}): install the Debian package `{p.debian_package}`"
           for p in PROGRAMS
           if not (shutil.which(p.name) or (p.name == "chromium"
                                            and shutil.which("chromium-browser")))]
    if shutil.which("dnsdist"):
        version = _dnsdist_version()
        if not version.startswith(DNSDIST_VERSION):
            out.append(f"dnsdist is `{version}`, the differential tests need 1.7.3")
    if not _private_mount_namespace():
        out.append("private mount namespaces (`unshare -m`, as root): the syslog differential "
                   "test gives each server its own /dev/log")
    if not (corpus_dir() / "expected.tsv").exists():
        out.append(f"the config corpus ({corpus_dir()}/expected.tsv): set PYDIST_CORPUS to the "
                   "directory holding configs/ and expected.tsv")
    return out


def banner(lines: list[str]) -> str:
    return ("\n" + "=" * 78 + "\nMISSING TEST PREREQUISITES (the suite does not skip them):\n"
            + "".join(f"  - {line}\n" for line in lines)
            + "`.ci/run` installs the Debian packages. To run anyway, with every test that "
            f"needs them\nfailing or skipped, set {ALLOW_MISSING}=1.\n" + "=" * 78)
