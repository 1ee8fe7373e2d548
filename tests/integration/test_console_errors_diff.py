"""Counters and console answers against real dnsdist 1.7.3 (issue 15, "Counters and console"):
getStatisticsCounters() read inside a rule, getServer() out of range, getBind():
getEffectiveTLSProvider(), negated web ACL entries, setACLFromFile() on a missing file, and the
plain-text credential warnings of setWebserverConfig()."""
from __future__ import annotations

import http.client
import re
import socket
from pathlib import Path

import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.conf import console_prelude
from tests.helpers.dot import make_cert_set
from tests.helpers.pydist_proc import DnsdistProcess, free_port, poll_until, query, run_cli

COUNTING = console_prelude(backend=False) + """
function countq(dq)
  return DNSAction.Spoof, "192.0.2." .. tostring(getStatisticsCounters()['queries'])
end
addAction(AllRule(), LuaAction(countq))
"""


def console(proc: DnsdistProcess, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout + res.stderr


def masked(text: str) -> str:
    """A C function's address in a traceback differs from run to run."""
    return re.sub(r"\[C\]: at 0x[0-9a-f]+", "[C]: at 0xADDR", text)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Each implementation's answers to the same console lines, after three queries (UDP, UDP,
    TCP) answered by a rule that reads the query counter."""
    certs = make_cert_set(tmp_path_factory.mktemp("certs"))
    conf = COUNTING + (f'addTLSLocal("127.0.0.1:{{portdot}}", "{certs.cert}", "{certs.key}")\n'
                       f'addDOHLocal("127.0.0.1:{{portdoh}}", "{certs.cert}", "{certs.key}")\n'
                       'addDOHLocal("127.0.0.1:{portdohplain}")\n')
    lines = ['getServer(5)', 'x = getServer(3)', 'getServer(-1)', 'getServer("abc")',
             'getServer("4b1c9b5e-4c4e-4d1f-9a57-3e0a3a4b5c6d")', 'rmServer(7)',
             'newServer("127.0.0.1:9"):setDown(); return getServer(1)',
             'getServer(0):getName()',
             'return getBind(0):getEffectiveTLSProvider() .. "," .. '
             'getBind(2):getEffectiveTLSProvider() .. "," .. '
             'getBind(3):getEffectiveTLSProvider() .. "," .. getBind(4):getEffectiveTLSProvider()',
             'getBind(9)', 'getBind(0)', 'getBind(0):toString()',
             'setACLFromFile("/nonexistent/pydist-acl")',
             'setWebserverConfig{acl="0.0.0.0/0, !192.0.2.1"}',
             'getStatisticsCounters()["queries"]']
    out: dict[str, dict[str, str]] = {}
    ports = {name: free_port() for name in ("port", "portconsole", "portdot", "portdoh",
                                            "portdohplain")}   # one after the other: the same
    for impl in ("dnsdist", "pydist"):
        proc = DnsdistProcess(impl, conf, tmp_path_factory.mktemp(impl), ports)
        try:
            proc.start(ready="Accepting control connections")
            answers = []
            for i, tcp in enumerate((False, False, True)):
                ans = query(proc.addr(), f"q{i}.example.", tcp=tcp)
                answers.append(ans.answer[0][0].address if ans is not None else None)
            out[impl] = {"answers": " ".join(map(str, answers))}
            out[impl].update({line: masked(console(proc, line)) for line in lines})
        finally:
            proc.stop()
    return out


def test_query_counter_read_in_a_rule_counts_the_current_query(outputs: dict) -> None:
    assert outputs["dnsdist"]["answers"] == "192.0.2.1 192.0.2.2 192.0.2.3"
    assert outputs["pydist"]["answers"] == outputs["dnsdist"]["answers"]


@pytest.mark.parametrize("line", ['getServer(5)', 'x = getServer(3)', 'getServer(-1)',
                                  'getServer("abc")',
                                  'getServer("4b1c9b5e-4c4e-4d1f-9a57-3e0a3a4b5c6d")',
                                  'rmServer(7)',
                                  'newServer("127.0.0.1:9"):setDown(); return getServer(1)',
                                  'getServer(0):getName()'])
def test_get_server_out_of_range(outputs: dict, line: str) -> None:
    assert outputs["pydist"][line] == outputs["dnsdist"][line]


def test_effective_tls_provider(outputs: dict) -> None:
    line = next(k for k in outputs["dnsdist"] if "getEffectiveTLSProvider" in k)
    assert outputs["dnsdist"][line] == ",openssl,openssl,openssl\n"
    assert outputs["pydist"][line] == outputs["dnsdist"][line]
    for line in ('getBind(9)', 'getBind(0)', 'getBind(0):toString()'):
        assert outputs["pydist"][line] == outputs["dnsdist"][line], line


def test_set_acl_from_missing_file_console(outputs: dict) -> None:
    line = 'setACLFromFile("/nonexistent/pydist-acl")'
    assert outputs["dnsdist"][line].startswith(
        "Error: Caught exception: Could not open '/nonexistent/pydist-acl': No such file")
    assert outputs["pydist"][line] == outputs["dnsdist"][line]


@pytest.mark.parametrize("impl", BOTH)
def test_set_acl_from_missing_file_config(impl: str, tmp_path: Path) -> None:
    conf = tmp_path / "acl.conf"
    conf.write_text('setACLFromFile("/nonexistent/pydist-acl")\n')
    res = run_cli(impl, ["--check-config", "-C", str(conf)])
    assert res.returncode == 1
    assert res.stdout == (
        """Fatal Lua error: [string "chunk"]:1: Caught exception: Could not open """
        """'/nonexistent/pydist-acl': No such file or directory\nstack traceback:\n"""
        """\t[C]: in function 'setACLFromFile'\n\t[string "chunk"]:1: in main chunk\n""")


@pytest.mark.parametrize("impl", BOTH)
def test_webserver_config_warnings_and_negated_acl(impl: str, tmp_path: Path) -> None:
    conf = tmp_path / "web.conf"
    conf.write_text('setWebserverConfig{password="", apiKey=""}\n'
                    'setWebserverConfig{acl="0.0.0.0/0, !192.0.2.1"}\n')
    res = run_cli(impl, ["--check-config", "-C", str(conf)])
    assert res.returncode == 0, res.stdout
    assert res.stdout.splitlines() == [
        "Passing a plain-text password via the 'password' parameter to 'setWebserverConfig()' is "
        "not advised, please consider generating a hashed one using 'hashPassword()' instead.",
        "Passing a plain-text API key via the 'apiKey' parameter to 'setWebserverConfig()' is not "
        "advised, please consider generating a hashed one using 'hashPassword()' instead.",
        f"Configuration '{conf}' OK!"]


def web_status(port: int, source: str) -> int | str:
    """The status of GET / from a given loopback source, or "dropped" (dnsdist resets the
    connection, pydist may close it first: either way no HTTP answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3, source_address=(source, 0))
    try:
        conn.request("GET", "/jsonstat?command=stats", headers={"X-API-Key": "k"})
        return conn.getresponse().status
    except (ConnectionError, http.client.HTTPException, socket.timeout) as e:
        return f"dropped ({type(e).__name__})"
    finally:
        conn.close()


def test_negated_web_acl_entry_is_enforced(start_proc: Starter) -> None:
    """127.0.0.0/8 allowed except 127.0.0.2: the same verdicts from both."""
    seen = {}
    for impl in ("dnsdist", "pydist"):
        web = free_port()
        proc = start_proc(impl, console_prelude(backend=False)
                          + f'webserver("127.0.0.1:{web}")\n'
                          'setWebserverConfig{apiKey="k", acl="127.0.0.0/8, !127.0.0.2"}\n',
                          ready="Accepting control connections")
        poll_until(lambda: web_status(web, "127.0.0.1") == 200)
        seen[impl] = (web_status(web, "127.0.0.1"), web_status(web, "127.0.0.2"),
                      web_status(web, "127.0.0.3"))
        proc.stop()
    assert seen["dnsdist"][0] == 200 and str(seen["dnsdist"][1]).startswith("dropped")
    assert [str(v)[:7] for v in seen["pydist"]] == [str(v)[:7] for v in seen["dnsdist"]]
