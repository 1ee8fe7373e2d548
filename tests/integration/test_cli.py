"""The command line: --check-config texts and exit codes, options, bind failure, no console."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BOTH, Starter, available_impls
from tests.helpers.pydist_proc import fill_template, free_port, query, run_cli
from tests.helpers.responder import Responder

SERVE = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
"""


def _conf(tmp_path: Path, text: str, name: str = "t.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _both(args: list[str]) -> dict[str, subprocess.CompletedProcess[str]]:
    """The same command line run by every available implementation."""
    return {impl: run_cli(impl, args) for impl in available_impls()}


def test_check_config_ok(tmp_path: Path) -> None:
    conf = _conf(tmp_path, 'setSecurityPollSuffix("")\nnewServer({address="127.0.0.1:1"})\n'
                           'pc = newPacketCache(100, {maxTTL=30})\ngetPool(""):setCache(pc)\n')
    for impl, r in _both(["--check-config", "-C", conf]).items():
        assert (r.returncode, r.stdout) == (0, f"Configuration '{conf}' OK!\n"), impl


@pytest.mark.parametrize("text,full", [
    ('setSecurityPollSuffix("")\nnewServer({address="127.0.0.1:1"}\n', True),   # syntax error
    ('addACL("notamask")\n', True),                                              # C++ exception
    ('setSecurityPollSuffix("")\nnoSuchFunction()\n', False),                   # unknown function
], ids=["syntax", "notamask", "unknown-function"])
def test_check_config_errors_match_dnsdist(tmp_path: Path, text: str, full: bool) -> None:
    """Exit 1; the full output (or its first line) equal to real dnsdist's."""
    conf = _conf(tmp_path, text)
    runs = _both(["--check-config", "-C", conf])
    py = runs["pydist"]
    assert py.returncode == 1
    assert py.stdout.startswith(("Fatal error: ", "Fatal Lua error: ")), py.stdout
    assert "OK!" not in py.stdout
    if "dnsdist" in runs:
        real = runs["dnsdist"]
        assert real.returncode == 1
        if full:
            assert py.stdout == real.stdout
        else:
            assert py.stdout.splitlines()[0] == real.stdout.splitlines()[0]


def test_missing_config_file(tmp_path: Path) -> None:
    """A missing file is a warning, an empty config, and OK."""
    conf = str(tmp_path / "absent.conf")
    for impl, r in _both(["--check-config", "-C", conf]).items():
        assert r.returncode == 0, impl
        assert r.stdout == (f"Unable to read configuration from '{conf}'\n"
                            f"Configuration '{conf}' OK!\n"), impl


def test_version_help_and_bad_option() -> None:
    runs = {impl: (run_cli(impl, ["-V"]), run_cli(impl, ["-h"]), run_cli(impl, ["--bogus"]))
            for impl in available_impls()}
    for impl, (ver, hlp, bad) in runs.items():
        assert ver.returncode == 0 and ver.stdout.splitlines()[0] == \
            "dnsdist 1.7.3 (Lua 5.1.4 [LuaJIT 2.1.0-beta3])", impl
        assert hlp.returncode == 0 and hlp.stdout.startswith("dnsdist 1.7.3\n"), impl
        assert "--check-config" in hlp.stdout
        assert bad.returncode == 1 and "unrecognized option '--bogus'" in bad.stderr, impl
    if "dnsdist" in runs:
        assert runs["pydist"][2].stderr == runs["dnsdist"][2].stderr
        assert runs["pydist"][0].stdout.splitlines()[0] == runs["dnsdist"][0].stdout.splitlines()[0]
    # pydist's own identity on a third line of its own, after dnsdist's two
    from pydist import __version__
    lines = runs["pydist"][0].stdout.splitlines()
    assert len(lines) == 3 and lines[1].startswith("Enabled features: ")
    assert lines[2].startswith(f"pydist {__version__} (Python 3.")


@pytest.mark.parametrize("impl", BOTH)
def test_dash_l_overrides_setlocal(impl: str, start_proc: Starter, responder: Responder) -> None:
    """-l replaces the config's plain listeners: the -l port answers, the setLocal one is closed."""
    other = free_port()
    proc = start_proc(impl, SERVE, {"backend": responder.address},
                      extra_args=("-l", f"127.0.0.1:{other}"))
    assert f"Listening on 127.0.0.1:{other}" in proc.output
    assert query(("127.0.0.1", other), "dashl.example.", tcp=True) is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proc.addr(), timeout=1).close()


@pytest.mark.parametrize("impl", BOTH)
def test_dash_a_replaces_default_acl(impl: str, start_proc: Starter, responder: Responder) -> None:
    """-a is the whole ACL: the defaults are not added, so loopback TCP gets closed."""
    proc = start_proc(impl, SERVE, {"backend": responder.address},
                      extra_args=("-a", "192.0.2.0/24"))
    assert "ACL allowing queries from: 192.0.2.0/24" in proc.output
    assert query(proc.addr(), "dasha.example.", tcp=True) is None
    assert responder.count("dasha.example.") == 0


@pytest.mark.parametrize("impl", BOTH)
def test_bind_failure(impl: str, tmp_path: Path) -> None:
    """A listener port already in use: the fatal message and exit 1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        conf = _conf(tmp_path, f'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n')
        r = run_cli(impl, ["--supervised", "--disable-syslog", "-C", conf], timeout=10)
    assert r.returncode == 1
    assert f"Fatal error: binding socket to 127.0.0.1:{port}: Address already in use" \
        in r.stdout.splitlines()


@pytest.mark.parametrize("impl", BOTH)
def test_positional_backend(impl: str, start_proc: Starter, responder: Responder) -> None:
    """A positional address is a backend of the default pool."""
    proc = start_proc(impl, 'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n',
                      extra_args=(responder.address,), check_config=False,
                      ready=r"Marking downstream .* as 'up'")
    assert query(proc.addr(), "positional.example.") is not None
    assert responder.count("positional.example.") == 1


@pytest.mark.parametrize("impl", BOTH)
def test_not_supervised_stdin_eof_exits_0(impl: str, tmp_path: Path) -> None:
    """Without --supervised the console reads stdin: /dev/null ends the process, exit 0."""
    text, _ = fill_template('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n', {})
    conf = _conf(tmp_path, text)
    r = run_cli(impl, ["--disable-syslog", "-C", conf], stdin=subprocess.DEVNULL, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Listening on 127.0.0.1:" in r.stdout


NESTED_ACL = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setACL({"10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16", "10.1.2.3", "::1", "2001:db8::/32",
        "2001:db8:1::/48", "1.2.3.4"})
addConsoleACL("127.0.0.1/32")
controlSocket("127.0.0.1:{portconsole}")
controlSocket("127.0.0.1:{portconsole}")
"""


@pytest.mark.parametrize("impl", BOTH)
def test_acl_order_and_second_control_socket(impl: str, start_proc: Starter) -> None:
    """Netmask groups listed in dnsdist's trie order; a second controlSocket() on the same
    address logs dnsdist's bind failure."""
    proc = start_proc(impl, NESTED_ACL, ready=r"Accepting control connections")
    assert ("ACL allowing queries from: 1.2.3.4/32, 10.1.2.3/32, 10.1.0.0/16, 10.0.0.0/8, "
            "192.168.0.0/16, ::1/128, 2001:db8:1::/48, 2001:db8::/32") in proc.output
    assert "Console ACL allowing connections from: 127.0.0.1/32, 127.0.0.0/8, ::1/128" in proc.output
    where = f"127.0.0.1:{proc.values['portconsole']}"
    proc.wait_for(f"Unable to bind to control socket on {where}: binding socket to {where}: "
                  "Address already in use")


@pytest.mark.parametrize("impl", BOTH)
def test_listener_on_a_missing_interface(impl: str, start_proc: Starter, responder: Responder) -> None:
    """interface= naming no device: dnsdist logs it for the UDP and the TCP socket and serves."""
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}", {interface="pydist-none0"})\n'
            'newServer({address="{backend}"})\n')
    proc = start_proc(impl, conf, {"backend": responder.address})
    where = f"127.0.0.1:{proc.values['port']}"
    line = f"Error setting up the interface on local address '{where}': "
    found = [ln for ln in proc.output.splitlines() if ln.startswith(line)]
    # root gets ENODEV; without CAP_NET_RAW the kernel says EPERM first
    assert len(found) == 2 and all(ln[len(line):] in ("No such device", "Operation not permitted")
                                   for ln in found), found
