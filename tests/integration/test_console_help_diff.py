"""help() on the console, pydist against real dnsdist 1.7.3 (both driven by `dnsdist -e`):
the whole keyword list, one keyword, a plain keyword (a policy name) and an unknown name."""
from __future__ import annotations

import subprocess

from tests.conftest import Starter
from tests.helpers.conf import console_prelude

CONF = console_prelude(backend=False)
COMMANDS = ("help()", 'help("addACL")', 'help("showServers")', 'help("whashed")',
            'help("nosuch")', "help(1)")


def _outputs(start_proc: Starter, impl: str) -> dict[str, tuple[int, str, str]]:
    proc = start_proc(impl, CONF, ready=r"Accepting control connections")
    out = {}
    for cmd in COMMANDS:
        res = subprocess.run(["dnsdist", "-C", str(proc.conf), "-e", cmd], capture_output=True,
                             text=True, timeout=10)
        out[cmd] = (res.returncode, res.stdout, res.stderr)
    proc.stop()
    return out


def test_help_identical(start_proc: Starter) -> None:
    real = _outputs(start_proc, "dnsdist")
    ours = _outputs(start_proc, "pydist")
    for cmd in COMMANDS:
        assert ours[cmd] == real[cmd], cmd
    listing = real["help()"][1].splitlines()
    assert len(listing) > 300 and listing[0].startswith("addACL(netmask): ")
