"""Rules as users read them, pydist against real dnsdist 1.7.3 (facts §10): every selector's
toString(), every action's text in showRules() and its response variants, and the errors of bad
rule configs (argument counts and types with LuaWrapper's mangled names, bad regexes, names,
addresses, log files, query/response action mix-ups), byte for byte."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Starter
from tests.helpers.pydist_proc import run_cli

pytestmark = pytest.mark.skipif(not shutil.which("dnsdist"), reason="dnsdist not installed")
KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="

SELECTORS = r"""
local nmg = newNMG(); nmg:addMask("192.0.2.0/24"); nmg:addMask("10.0.0.0/8")
local smn = newSuffixMatchNode(); smn:add("a.example."); smn:add("b.example")
local set = newDNSNameSet(); set:add(newDNSName("x.example")); set:add(newDNSName("y.example"))
local rules = {
 AllRule(), QNameRule("Www.Example.com"), QNameSetRule(set), SuffixMatchNodeRule(smn),
 SuffixMatchNodeRule(smn, true), RegexRule("^ads[0-9]+\\."), RE2Rule("ads.*"),
 QTypeRule("AAAA"), QTypeRule(DNSQType.TXT), QTypeRule(65280), QClassRule(3), OpcodeRule(5),
 QTypeRule(7), QTypeRule(10), QTypeRule(11), QTypeRule(38), QTypeRule(55), QTypeRule(63),
 QTypeRule(104), QTypeRule(250), QTypeRule(32769), QTypeRule(65401), QTypeRule("TYPE10"),
 RDRule(), TCPRule(true), TCPRule(false), DNSSECRule(), NetmaskGroupRule(nmg),
 NetmaskGroupRule(nmg, false), NetmaskGroupRule(nmg, true, true), DSTPortRule(53), MaxQPSRule(10),
 MaxQPSRule(10, 20), MaxQPSIPRule(5), MaxQPSIPRule(5, 24, 56, 10, 60), ProbaRule(0.25),
 AndRule({QTypeRule(1), RDRule()}), OrRule({QTypeRule(1), TCPRule(true)}), NotRule(RDRule()),
 RCodeRule(DNSRCode.NXDOMAIN), ERCodeRule(DNSRCode.BADVERS), RCodeRule(12), EDNSVersionRule(0),
 EDNSOptionRule(EDNSOptionCode.ECS), RecordsCountRule(DNSSection.Answer, 1, 5),
 RecordsTypeCountRule(DNSSection.Additional, DNSQType.OPT, 0, 1), TrailingDataRule(),
 QNameLabelsCountRule(2, 10), QNameWireLengthRule(10, 100), TagRule("k"), TagRule("k", "v"),
 PoolAvailableRule("p"), PoolOutstandingRule("p", 10), LuaRule(function(dq) return true end),
 SNIRule("sni.example"), HTTPPathRule("/dns-query"), HTTPPathRegexRule("^/x"),
 HTTPHeaderRule("user-agent", "curl.*"), ProxyProtocolValueRule(2),
 ProxyProtocolValueRule(2, "x"), makeRule("192.0.2.1"), makeRule({"a.example", "b.example"}),
 makeRule({"192.0.2.0/24", "example.com"}), makeRule(newDNSName("c.example")),
 makeRule("2001:db8::/32"),
}
for i, r in ipairs(rules) do print(i, r:toString()) end
"""

ACTIONS = r"""
local n = QNameRule("never.invalid.")
local acts = {
 AllowAction(), DropAction(), NoneAction(), PoolAction("p"), QPSPoolAction(10, "p"), QPSAction(5),
 RCodeAction(DNSRCode.REFUSED), RCodeAction(3, {aa=true}), ERCodeAction(DNSRCode.BADVERS),
 SpoofAction("192.0.2.1"), SpoofAction({"192.0.2.1", "2001:db8::1"}),
 SpoofCNAMEAction("target.example"), SpoofRawAction("\192\000\002\001"),
 SpoofRawAction({"a", "b"}), TCAction(), DelayAction(100), LogAction(),
 LogAction("/dev/null", false), SetNoRecurseAction(), NoRecurseAction(),
 SetDisableValidationAction(), SetSkipCacheAction(), SetTempFailureCacheTTLAction(10),
 SetECSAction("192.0.2.0/24"), SetECSAction("192.0.2.0/24", "2001:db8::/56"),
 SetECSPrefixLengthAction(24, 56), SetECSOverrideAction(true), SetDisableECSAction(),
 SetMacAddrAction(65001), SetEDNSOptionAction(65002, "x"), SetTagAction("k", "v"),
 TeeAction("127.0.0.1:5300"), TeeAction("127.0.0.1"), ContinueAction(PoolAction("p")),
 LuaAction(function(dq) return DNSAction.None end),
 NegativeAndSOAAction(true, "example.", 60, "ns.example.", "h.example.", 1, 2, 3, 4, 5),
 NegativeAndSOAAction(false, "example.", 60, "ns.example.", "h.example.", 1, 2, 3, 4, 5),
 SNMPTrapAction("x"), HTTPStatusAction(200, "ok"), SetAdditionalProxyProtocolValueAction(2, "x"),
 SpoofSVCAction({newSVCRecordParameters(1, "t.example.", {port=443})}),
}
for i, a in ipairs(acts) do addAction(n, a, {name="q" .. i}) end
local racts = {
 AllowResponseAction(), DropResponseAction(), DelayResponseAction(10), LogResponseAction(),
 LogResponseAction("/dev/null"), SetTagResponseAction("a", "b"), SetSkipCacheResponseAction(),
 LuaResponseAction(function(dr) return DNSResponseAction.None end), SNMPTrapResponseAction("x"),
}
for _, a in ipairs(racts) do
  addResponseAction(n, a); addCacheHitResponseAction(n, a); addSelfAnsweredResponseAction(n, a)
end
"""

BAD_CONFIGS = [
    'addAction(QTypeRule("A"), 5)', 'addAction(AllRule(), DropResponseAction())',
    'addResponseAction(AllRule(), DropAction())',
    'addCacheHitResponseAction(AllRule(), PoolAction("x"))',
    'addAction(RegexRule("("), DropAction())',
    'addAction(AllRule(), LogAction("/nonexistent/dir/x.log"))',
    'addAction(NetmaskGroupRule("1.2.3.4"), DropAction())',
    'addAction(QTypeRule("NOTATYPE"), DropAction())',
    'addAction(AllRule(), SpoofAction("not-an-ip"))', 'SpoofAction("cname.example.")',
    'addAction(AndRule(QTypeRule(1)), DropAction())', 'AndRule({5})',
    'addAction(AllRule(), LuaAction(5))', 'LuaResponseAction("x")', 'LuaRule(5)',
    'setRules({5})', 'setRules(5)', 'addAction(AllRule())', 'addAction(TagRule(), DropAction())',
    'addAction("not a valid..name", DropAction())', 'newDNSName(string.rep("a", 64))',
    'addAction({"192.0.2.0/33"}, DropAction())', 'addAction(AllRule(), PoolAction())',
    'addAction(NotRule(5), DropAction())', 'addAction(AllRule(), RCodeAction("x"))',
    'RCodeAction(1, 5)', 'SpoofAction("192.0.2.1", 5)', 'addAction(AllRule(), DropAction(), 5)',
    'addAction(AllRule(), ContinueAction(DropResponseAction()))', 'AllRule(5)', 'TCAction(5)',
    'DropResponseAction(5)', 'QTypeRule({})', 'QClassRule("x")', 'OpcodeRule("x")',
    'DSTPortRule("x")', 'MaxQPSRule("x")', 'MaxQPSRule(1, "x")', 'MaxQPSIPRule(1, 32, 64, 1, "x")',
    'ProbaRule("x")', 'EDNSOptionRule("x")', 'RecordsCountRule(1, "x", 2)',
    'RecordsTypeCountRule(1, {}, 1, 2)', 'QNameLabelsCountRule(1)', 'QNameWireLengthRule(1, "x")',
    'TCPRule(1)', 'PoolOutstandingRule("p", "x")', 'QNameSetRule(5)',
    'SuffixMatchNodeRule(newSuffixMatchNode(), "x")', 'NetmaskGroupRule(newNMG(), "x")',
    'QPSPoolAction("x", "p")', 'SetECSPrefixLengthAction("x", 1)', 'LogAction("", false, "x")',
    'DelayResponseAction("x")', 'SetTagResponseAction({}, "x")', 'HTTPHeaderRule("a")',
    'makeRule(true)', 'newRuleAction(AllRule(), 5)', 'rmRule({})', 'mvRule("x", 1)',
    'topRules("x")', 'getAction("x")', 'showRules(5)', 'RE2Rule("[")',
    'addAction(AllRule(), DropAction(), {uuid="not-a-uuid"})',
    'newSVCRecordParameters(1, "t.example.", {bogus=1})',
]


def _check(impl: str, text: str, tmp: Path) -> str:
    conf = tmp / f"{impl}.conf"
    conf.write_text(text + "\n")
    res = run_cli(impl, ["--check-config", "-C", conf.name], cwd=tmp)
    return (res.stdout + res.stderr).replace(conf.name, "CONF")


def test_selector_texts_identical(tmp_path: Path) -> None:
    got = {impl: _check(impl, SELECTORS, tmp_path) for impl in ("dnsdist", "pydist")}
    assert got["pydist"] == got["dnsdist"]
    assert "qname==in-set" in got["pydist"] and "Configuration 'CONF' OK!" in got["pydist"]


@pytest.mark.parametrize("snippet", BAD_CONFIGS)
def test_bad_rule_config_errors_identical(snippet: str, tmp_path: Path) -> None:
    got = {impl: _check(impl, snippet, tmp_path) for impl in ("dnsdist", "pydist")}
    first = {impl: text.splitlines()[0] for impl, text in got.items()}
    assert first["pydist"] == first["dnsdist"]
    ok = "Configuration 'CONF' OK!" in got["dnsdist"]
    assert ("Configuration 'CONF' OK!" in got["pydist"]) == ok


def _show(conf: str, cmd: str) -> str:
    res = subprocess.run(["dnsdist", "-C", conf, "-e", cmd], capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 0, res.stdout + res.stderr
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID",
                  res.stdout)


def test_show_rules_identical(start_proc: Starter) -> None:
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'controlSocket("127.0.0.1:{portconsole}")\nsetKey("%s")\n' % KEY) + ACTIONS
    commands = ("showRules()", "showRules({showUUIDs=true})", "showRules({truncateRuleWidth=8})",
                "showResponseRules()", "showCacheHitResponseRules({showUUIDs=true})",
                "showSelfAnsweredResponseRules()", "topRules(3)", "rmRule('q2')", "rmRule(0)",
                "mvRule(0, 2)", "mvRuleToTop()", "rmRule(99)", "rmRule('nope')", "showRules()")
    outputs = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, conf, ready=r"Accepting control connections")
        outputs[impl] = [_show(str(proc.conf), c) for c in commands]
        proc.stop()
    for cmd, mine, theirs in zip(commands, outputs["pydist"], outputs["dnsdist"], strict=True):
        assert mine == theirs, cmd
    assert "to pool p" in outputs["pydist"][0] and "Lua response script" in outputs["pydist"][3]


LOG_CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
addAction("b.test.", LogAction("{dir}/bin.log", true, false, false))
addAction("t.test.", LogAction("{dir}/text.log", false, false, false))
addAction("ts.test.", LogAction("{dir}/ts.log", false, false, false, false, true))
addAction(AllRule(), RCodeAction(DNSRCode.REFUSED))
"""


def test_log_action_files_identical(start_proc: Starter, tmp_path: Path) -> None:
    """Text lines (id in host order, as dnsdist prints it), timestamps, the binary record."""
    import socket

    import dns.message
    files: dict[str, dict[str, bytes]] = {}
    for impl in ("dnsdist", "pydist"):
        d = tmp_path / impl
        d.mkdir()
        proc = start_proc(impl, LOG_CONF, {"dir": str(d)})
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(2)
            port = s.getsockname()[1]
            for name in ("b.test.", "t.test.", "ts.test."):
                q = dns.message.make_query(name, "AAAA")
                q.id = 0x1234
                s.sendto(q.to_wire(), proc.addr())
                assert dns.message.from_wire(s.recv(4096)).rcode() == 5
        proc.stop()
        got = {f: (d / f).read_bytes() for f in ("bin.log", "text.log", "ts.log")}
        got["bin.log"] = got["bin.log"][:-2] + (b"PP" if got["bin.log"][-2:] ==
                                                port.to_bytes(2, "big") else b"??")
        got = {f: v.replace(str(port).encode(), b"PORT") for f, v in got.items()}
        got["ts.log"] = re.sub(rb"^\[\d+\.(?:0|[1-9]\d{0,8})\] ", b"[TS] ", got["ts.log"])
        files[impl] = got
    assert files["pydist"] == files["dnsdist"]
    assert files["pydist"]["text.log"] == b"Packet from 127.0.0.1:PORT for t.test. AAAA with id 13330\n"
    assert files["pydist"]["bin.log"] == bytes.fromhex("123401620474657374001c0002007f000001") + b"PP"
