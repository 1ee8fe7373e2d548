"""Every selector and query action at serve time, over UDP and TCP, pydist against real dnsdist
1.7.3 on the same config and the same queries (facts §10.2, §10.3). Each selector gates an
answer on its own name (sN.test.), so an answer shows whether it matched; the answers (rcode,
flags, sections, EDNS) must be identical."""
from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rdataclass
import pytest

from tests.conftest import ResponderFactory, Starter, available_impls
import socket

from tests.helpers.pydist_proc import poll_until

SELECTORS = {   # name -> selector (with the gate on sN.test. added around it)
    "s1": 'QTypeRule("AAAA")', "s2": "QClassRule(DNSClass.CHAOS)", "s3": "OpcodeRule(0)",
    "s4": "RDRule()", "s5": "TCPRule(true)", "s6": "DNSSECRule()",
    "s7": 'NetmaskGroupRule(nmg)', "s8": "NetmaskGroupRule(nmg, false)", "s9": "DSTPortRule({port})",
    "s10": 'RegexRule("^re[0-9]+\\\\.")', "s11": 'RE2Rule("re[0-9]+\\\\.s11\\\\.test")',
    "s12": 'QNameRule("exact.s12.test.")', "s13": "QNameSetRule(set)",
    "s14": "QNameLabelsCountRule(2, 4)", "s15": "QNameWireLengthRule(1, 20)",
    "s16": "EDNSVersionRule(0)", "s17": "EDNSOptionRule(EDNSOptionCode.COOKIE)",
    "s18": "RecordsCountRule(DNSSection.Additional, 1, 1)",
    "s19": "RecordsTypeCountRule(DNSSection.Additional, DNSQType.OPT, 1, 1)",
    "s20": 'TagRule("t", "v")', "s21": 'NotRule(QTypeRule("A"))',
    "s22": 'OrRule({QTypeRule("MX"), QTypeRule("TXT")})', "s23": 'PoolAvailableRule("")',
    "s24": 'PoolAvailableRule("empty")', "s25": 'PoolOutstandingRule("", 1000)',
    "s26": "ProbaRule(1.0)", "s27": "ProbaRule(0.0)", "s28": "MaxQPSIPRule(1000)",
    "s29": "LuaRule(function(dq) return dq.qtype == DNSQType.SRV end)", "s30": "AllRule()",
    "s31": "MaxQPSRule(100000)", "s32": "SuffixMatchNodeRule(smn)",
}
ACTIONS = """
addAction("a1.test.", AllowAction())
addAction("a1.test.", DropAction())
addAction("a2.test.", NoneAction())
addAction("a2.test.", RCodeAction(DNSRCode.NXDOMAIN, {aa=true, ra=false}))
addAction("a3.test.", QPSAction(100000))
addAction("a3.test.", RCodeAction(DNSRCode.NOTIMP))
addAction("a4.test.", ERCodeAction(DNSRCode.BADVERS))
addAction("a5.test.", SpoofRawAction({"\\192\\000\\002\\001", "\\192\\000\\002\\002"}, {ttl=30}))
addAction("a6.test.", SpoofAction({"192.0.2.7"}, {aa=true, ttl=10}))
addAction("a7.test.", SpoofCNAMEAction("target.example.", {ad=true}))
addAction("a8.test.", SetDisableValidationAction())
addAction("a9.test.", SetSkipCacheAction())
addAction("a10.test.", SetTempFailureCacheTTLAction(5))
addAction("a11.test.", ContinueAction(PoolAction("other")))
addAction("a11.test.", RCodeAction(DNSRCode.YXDOMAIN))
addAction("a12.test.", SetNoRecurseAction())
addAction("a13.test.", TCAction())
addAction("a14.test.", LuaAction(function(dq) dq.dh:setAD(true) return DNSAction.Nxdomain end))
addAction("a15.test.", LuaAction(function(dq) return DNSAction.SpoofRaw, "\\192\\000\\002\\009" end))
addAction("a16.test.", LuaAction(function(dq) return DNSAction.Truncate end))
addAction("a17.test.", LuaAction(function(dq) return DNSAction.HeaderModify end))
addAction("a18.test.", LuaAction(function(dq) dq.dh:setQR(true) dq.rcode = 4 return DNSAction.HeaderModify end))
addAction("a19.test.", LuaAction(function(dq) return DNSAction.ServFail end))
addAction("a20.test.", LuaAction(function(dq) return DNSAction.Pool, "other" end))
addAction("a21.test.", LogAction("", false, false, false, false))
addAction("a22.test.", PoolAction("empty"))
addAction("a23.test.", NegativeAndSOAAction(true, "test.", 60, "ns.test.", "host.test.", 1, 2, 3, 4, 5))
addAction("a24.test.", NegativeAndSOAAction(false, "Test.", 61, "ns.test.", "h.test.", 1, 2, 3, 4, 5, {aa=true}))
addAction("a25.test.", SetEDNSOptionAction(65001, "abc"))
addAction("a25.test.", LuaAction(function(dq)
  local n = 0
  for code, _ in pairs(dq:getEDNSOptions()) do n = n + code end
  return DNSAction.Spoof, "192.0." .. math.floor(n / 256) .. "." .. (n % 256)
end))
addAction("a26.test.", LuaAction(function(dq)
  dq:setNegativeAndAdditionalSOA(true, "neg.test.", 30, "ns.test.", "h.test.", 9, 8, 7, 6, 5)
  return DNSAction.HeaderModify
end))
addAction("a27.test.", TeeAction("{tee}"))
addAction("a28.test.", LuaAction(function(dq) return DNSAction.Spoof, "192.0.2.1, 192.0.2.2 x" end))
addAction("a29.test.", LuaAction(function(dq) return DNSAction.SpoofRaw, "\192\000\002\001,\192\000\002\002" end))
addAction("a30.test.", LuaAction(function(dq) return DNSAction.Spoof, "target.example" end))
local svc1 = newSVCRecordParameters(1, "target.test.", {mandatory={"port"}, alpn={"h2", "h3"},
  noDefaultAlpn=true, port=8443, ipv4hint={"192.0.2.1", "192.0.2.2"}, ipv6hint={"2001:db8::1"}})
local svc2 = newSVCRecordParameters(2, ".", {port=53, key65000="x"})
addAction("a31.test.", SpoofSVCAction({svc1, svc2}, {ttl=30, aa=true}))
"""
QUERIES = [  # (name, type, query options)
    ("www.s1.test.", "A", {}), ("www.s1.test.", "AAAA", {}), ("www.s2.test.", "TXT", {"rdclass": "CH"}),
    ("www.s3.test.", "A", {}), ("www.s4.test.", "A", {"norec": True}), ("www.s4.test.", "A", {}),
    ("www.s5.test.", "A", {}), ("www.s6.test.", "A", {"want_dnssec": True}), ("www.s6.test.", "A", {}),
    ("www.s7.test.", "A", {}), ("www.s8.test.", "A", {}), ("www.s9.test.", "A", {}),
    ("re12.s10.test.", "A", {}), ("www.s10.test.", "A", {}), ("re3.s11.test.", "A", {}),
    ("exact.s12.test.", "A", {}), ("www.exact.s12.test.", "A", {}), ("x.s13.test.", "A", {}),
    ("y.s13.test.", "A", {}), ("a.b.c.s14.test.", "A", {}), ("s14.test.", "A", {}),
    ("long-name-here.s15.test.", "A", {}), ("s15.test.", "A", {}),
    ("www.s16.test.", "A", {"use_edns": 0}), ("www.s17.test.", "A", {"cookie": True}),
    ("www.s17.test.", "A", {"use_edns": 0}), ("www.s18.test.", "A", {"use_edns": 0}),
    ("www.s18.test.", "A", {}), ("www.s19.test.", "A", {"use_edns": 0}), ("www.s20.test.", "A", {}),
    ("www.s21.test.", "A", {}), ("www.s21.test.", "MX", {}), ("www.s22.test.", "TXT", {}),
    ("www.s22.test.", "A", {}), ("www.s23.test.", "A", {}), ("www.s24.test.", "A", {}),
    ("www.s25.test.", "A", {}), ("www.s26.test.", "A", {}), ("www.s27.test.", "A", {}),
    ("www.s28.test.", "A", {}), ("www.s29.test.", "SRV", {}), ("www.s29.test.", "A", {}),
    ("www.s30.test.", "A", {}), ("www.s31.test.", "A", {}), ("in.s32.test.", "A", {}),
] + [(f"a{i}.test.", t, o) for i in range(1, 32)
     for t, o in (("A", {}), ("AAAA", {"use_edns": 0, "want_dnssec": True}))]

CONF_HEAD = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
newServer({address="{other}", pool="other"})
local nmg = newNMG(); nmg:addMask("127.0.0.1/32")
local set = newDNSNameSet(); set:add(newDNSName("x.s13.test."))
local smn = newSuffixMatchNode(); smn:add("in.s32.test.")
addAction("s20.test.", SetTagAction("t", "v"))
"""


def _config() -> str:
    gates = "".join(f'addAction(AndRule({{makeRule("{name}.test."), {sel}}}), '
                    f'RCodeAction(DNSRCode.REFUSED))\n' for name, sel in SELECTORS.items())
    return CONF_HEAD + gates + ACTIONS


def _message(name: str, qtype: str, opts: dict) -> dns.message.Message:
    opts = dict(opts)
    norec = opts.pop("norec", False)
    cookie = opts.pop("cookie", False)
    rdclass = opts.pop("rdclass", "IN")
    if cookie:
        opts["use_edns"] = 0
        opts["options"] = [dns.edns.GenericOption(dns.edns.COOKIE, b"\x01" * 8)]
    m = dns.message.make_query(name, qtype, rdclass=dns.rdataclass.from_text(rdclass), **opts)
    if norec:
        m.flags &= ~dns.flags.RD
    m.id = 4242
    return m


def _ask(where: tuple[str, int], m: dns.message.Message, tcp: bool) -> bytes | None:
    """Raw answer bytes (some spoofed answers do not parse: raw rdata of the wrong size)."""
    wire = m.to_wire()
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(1.0)
        try:
            if tcp:
                s.connect(where)
                s.sendall(len(wire).to_bytes(2, "big") + wire)
                head = s.recv(2)
                if len(head) < 2:
                    return None
                n, data = int.from_bytes(head, "big"), b""
                while len(data) < n:
                    chunk = s.recv(n - len(data))
                    if not chunk:
                        return None
                    data += chunk
                return data
            s.sendto(wire, where)
            return s.recv(65535)
        except OSError:
            return None


def _view(data: bytes | None) -> tuple | None:
    if data is None:
        return None
    try:
        r = dns.message.from_wire(data)
    except Exception:     # answer records split on their 0xC00C name pointer, order-free
        head, *records = data[2:].hex().split("c00c")
        return ("unparsed", head, sorted(records))
    return (r.rcode(), dns.flags.to_text(r.flags),
            sorted(sorted(str(x).splitlines()) for x in r.answer),   # spoofs come shuffled
            sorted(str(x) for x in r.authority), r.edns, r.payload if r.edns >= 0 else None,
            r.ednsflags if r.edns >= 0 else None)


@pytest.mark.skipif(len(available_impls()) < 2, reason="dnsdist not installed")
def test_every_selector_and_action_as_dnsdist(start_proc: Starter,
                                              responder_factory: ResponderFactory) -> None:
    backend, other, tee = responder_factory(), responder_factory(), responder_factory()
    views: dict[str, list] = {}
    teed: dict[str, int] = {}
    for impl in ("dnsdist", "pydist"):
        proc = start_proc(impl, _config(), {"backend": backend.address, "other": other.address,
                                            "tee": tee.address})
        port = proc.values["port"]
        out = []
        for name, qtype, opts in QUERIES:
            for tcp in (False, True):
                r = _ask(proc.addr(), _message(name, qtype, opts), tcp)
                out.append(((name, qtype, str(opts), tcp), _view(r)))
        views[impl] = out
        teed[impl] = poll_until(lambda: tee.count("a27.test."), timeout=3)
        tee.queries.clear()
        proc.stop()
        assert port
    mismatches = [(q, mine, theirs) for (q, mine), (_, theirs)
                  in zip(views["pydist"], views["dnsdist"], strict=True) if mine != theirs]
    assert mismatches == [], "\n".join(map(str, mismatches))
    refused = sum(1 for _, v in views["pydist"] if v is not None and v[0] == 5)
    assert refused >= 30        # the selectors did match where they should
    assert teed["pydist"] == teed["dnsdist"] == 2      # UDP queries copied, TCP ones not
