"""The Lua surface is dnsdist's (issue 17, item 5): the objects the bindings hand to Lua show
dnsdist's methods and fields and nothing else; lupa's `python` module, attribute walks into
Python objects (`getServer(0).rt.registry.engine.loop`) and pydist's plumbing are out of
reach; dnsdist's own Lua power (os, io, package, debug) stays. Every probe runs from the
console and from a config, on real dnsdist 1.7.3 and on pydist, and must fail (or not) alike."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import DnsdistProcess, free_port, query, run_cli

SETUP = console_prelude(backend=False) + """
newServer{address="127.0.0.1:9", name="s0"}:setDown()
function probe(dq)
  seen = type(dq.rt) .. type(dq._dq) .. type(dq._rt) .. type(dq.data) .. type(dq.qname)
  return DNSAction.None, ""
end
addAction(AllRule(), LuaAction(probe))
addAction(AllRule(), SpoofAction("192.0.2.1"))
"""

# Every kind of object the bindings return, and names pydist's Python objects hold (handles'
# attributes, Python's own) that dnsdist's objects do not have.
OBJECTS = ['getServer(0)', 'getPool("")', 'newPacketCache(10)', 'AllRule()', 'DropAction()',
           'newRuleAction(AllRule(), DropAction())', 'newDNSName("a.b.")', 'newCA("192.0.2.1")',
           'newNMG()', 'newNetmask("192.0.2.0/24")', 'newSuffixMatchNode()', 'newDNSNameSet()',
           'newQPSLimiter(10, 10)', 'getBind(0)', 'dynBlockRulesGroup()',
           'newServerPolicy("q", function() return 0 end)']
NAMES = ("rt", "server", "registry", "engine", "pool", "cache", "sel", "act", "rule", "nmg",
         "net", "smn", "set", "limiter", "decl", "group", "host", "_state", "_dq", "__class__",
         "__dict__", "__init__", "console_str", "address", "to_string")

WALK = ("local o = {obj}; local t = {{}}; for _, k in ipairs({{{names}}}) do "
        "t[#t + 1] = k .. '=' .. type(o[k]) end; {out} table.concat(t, ' ')")

STATEMENTS = {
    "rt": "local r = getServer(0).rt.registry",
    "loop": "local l = getServer(0).rt.registry.engine.loop",
    "server-field": "local f = getServer(0).server.addr",
    "require": 'require("python")',
    "python-global": 'python.eval("1")',
    "python-builtins": "local b = python.builtins",
    "write-unknown": "getServer(0).foo = 1",
    "write-internal": "getServer(0).rt = 1",
    "plumbing": "__pydist_run('x = 1', 'x')",
    "wrap": "__pydist_wrap(print)",
}
VALUES = {
    "globals": "type(python) .. type(package.loaded.python) .. type(__pydist_classify) .. "
               "type(__pydist_wrap) .. type(__pydist_run) .. type(lupa)",
    "power": "type(os.time) .. type(io.open) .. type(package.path) .. type(require) .. "
             "type(debug.getinfo) .. type(loadstring) .. type(ffi) .. type(bit)",
    "write-member": "(function() getServer(0).order = 3; return getServer(0).order end)()",
    "method": "type(getServer(0).getName) .. getServer(0):getName()",
}


def console_lines() -> dict[str, str]:
    lines = {f"walk {o}": WALK.format(obj=o, names=", ".join(f"'{n}'" for n in NAMES), out="return")
             for o in OBJECTS}
    lines.update(STATEMENTS)
    lines.update({k: f"return {v}" for k, v in VALUES.items()})
    return lines


def masked(text: str) -> str:
    return re.sub(r"\[C\]: at 0x[0-9a-f]+", "[C]: at 0xADDR", text)


@pytest.fixture(scope="module")
def from_console(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    ports = {"port": free_port(), "portconsole": free_port()}
    for impl in ("dnsdist", "pydist"):
        proc = DnsdistProcess(impl, SETUP, tmp_path_factory.mktemp(impl), ports)
        try:
            proc.start(ready="Accepting control connections")
            assert query(proc.addr(), "probe.example.") is not None
            res = {name: masked(console_run(proc, line)) for name, line in console_lines().items()}
            res["dq"] = console_run(proc, "return seen")
            out[impl] = res
        finally:
            proc.stop()
    return out


def console_run(proc: DnsdistProcess, line: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", line])
    return res.stdout + res.stderr


@pytest.mark.parametrize("name", [*console_lines(), "dq"])
def test_console_probe(from_console: dict, name: str) -> None:
    assert from_console["pydist"][name] == from_console["dnsdist"][name]


def test_walks_see_nothing_of_python(from_console: dict) -> None:
    for o in OBJECTS:
        assert "=nil" in from_console["dnsdist"][f"walk {o}"]
        assert set(from_console["pydist"][f"walk {o}"].split()) == {f"{n}=nil" for n in NAMES}, o
    assert from_console["dnsdist"]["dq"] == "nilnilnilniluserdata\n"


def config_probes() -> dict[str, str]:
    probes = {f"walk {o}": WALK.format(obj=o, names=", ".join(f"'{n}'" for n in NAMES),
                                       out="print(") + ")" for o in OBJECTS}
    probes.update(STATEMENTS)
    probes.update({k: f"print({v})" for k, v in VALUES.items()})
    return probes


@pytest.mark.parametrize("name", config_probes())
def test_config_probe(name: str, tmp_path: Path) -> None:
    conf = tmp_path / "probe.conf"
    conf.write_text(SETUP.replace("{port}", "5300").replace("{portconsole}", "5399")
                    + config_probes()[name] + "\n")
    got = {}
    for impl in ("dnsdist", "pydist"):
        res = run_cli(impl, ["--check-config", "-C", str(conf)])
        got[impl] = (res.returncode, masked(res.stdout), res.stderr)
    assert got["pydist"] == got["dnsdist"]
