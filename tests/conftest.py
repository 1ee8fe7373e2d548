"""Shared fixtures: free ports, loopback responders, pydist/dnsdist processes."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.helpers import prerequisites
from tests.helpers.pydist_proc import IMPLS, DnsdistProcess, free_port
from tests.helpers.responder import Handler, Responder

# Hypothesis keeps its example database and constants cache out of the checkout (they hold this
# machine's paths): a throw-away directory per run, and no example database at all.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="pydist-hypothesis-")
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", _HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, True)
from hypothesis import settings as _hypothesis_settings  # noqa: E402  (after the directory)

_hypothesis_settings.register_profile("pydist", database=None)
_hypothesis_settings.load_profile("pydist")

Starter = Callable[..., DnsdistProcess]
ResponderFactory = Callable[..., Responder]


def pytest_sessionstart(session: pytest.Session) -> None:
    """A missing dnsdist, tool or corpus stops the run loudly (tests/helpers/prerequisites.py)."""
    absent = prerequisites.missing()
    if not absent:
        return
    text = prerequisites.banner(absent)
    if os.environ.get(prerequisites.ALLOW_MISSING) == "1":
        print(text, file=sys.stderr)
        return
    pytest.exit(text, returncode=3)


def impl_param(impl: str) -> object:
    """A parametrize value; the real-dnsdist side fails (never skips) without dnsdist."""
    return pytest.param(impl, id=impl)


BOTH = [impl_param(i) for i in IMPLS]


def available_impls() -> tuple[str, ...]:
    """Both sides, always: a differential test without dnsdist must fail, not shrink."""
    return IMPLS


@pytest.fixture
def port() -> int:
    """A free loopback port (UDP and TCP, IPv4 and IPv6)."""
    return free_port()


@pytest.fixture
def responder_factory() -> Iterator[ResponderFactory]:
    """Make loopback responders; all closed at teardown."""
    made: list[Responder] = []

    def make(handler: Handler | None = None, host: str = "127.0.0.1") -> Responder:
        r = Responder(handler, host)
        made.append(r)
        return r
    try:
        yield make
    finally:
        for r in made:
            r.close()


@pytest.fixture
def responder(responder_factory: ResponderFactory) -> Responder:
    """One default responder on 127.0.0.1 (A for everything, NXDOMAIN below nx.test.)."""
    return responder_factory()


@pytest.fixture
def start_proc(tmp_path: Path) -> Iterator[Starter]:
    """start_proc(impl, template, values=..., ready=..., extra_args=...) -> a running process.

    Every process started is stopped at teardown, even when the test failed.
    """
    procs: list[DnsdistProcess] = []

    def start(impl: str, template: str, values: dict[str, object] | None = None,
              ready: str | None = "auto", extra_args: tuple[str, ...] = (),
              check_config: bool = True, timeout: float = 10.0) -> DnsdistProcess:
        p = DnsdistProcess(impl, template, tmp_path, values, extra_args, check_config)
        procs.append(p)
        return p.start(ready, timeout)
    try:
        yield start
    finally:
        for p in procs:
            p.stop()
