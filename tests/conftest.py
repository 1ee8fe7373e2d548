"""Shared fixtures: free ports, loopback responders, pydist/dnsdist processes."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.helpers.pydist_proc import IMPLS, DnsdistProcess, free_port
from tests.helpers.responder import Handler, Responder

Starter = Callable[..., DnsdistProcess]
ResponderFactory = Callable[..., Responder]


def impl_param(impl: str) -> object:
    """A parametrize value; the real-dnsdist side is skipped when dnsdist is not installed."""
    marks = [] if impl == "pydist" or shutil.which("dnsdist") else \
        [pytest.mark.skip(reason="dnsdist not installed")]
    return pytest.param(impl, marks=marks, id=impl)


BOTH = [impl_param(i) for i in IMPLS]


def available_impls() -> tuple[str, ...]:
    """pydist, and real dnsdist when it is installed (for tests that run both side by side)."""
    return IMPLS if shutil.which("dnsdist") else ("pydist",)


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
