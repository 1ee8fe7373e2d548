"""Selectors, actions and chains: dnsdist's toString texts (taken from real dnsdist 1.7.3),
showRules layout, chain edits and the verdicts of the query chain."""
from __future__ import annotations

import dnslib
import pytest

from pydist.dnsquestion import DNSQuestion
from pydist.dns.netmask import NetmaskGroup
from pydist.rules import actions as A
from pydist.rules import selectors as S
from pydist.rules.chain import ChainError, Rule, RuleChain, run_query_chain
from pydist.rules.names import DNSName, SuffixMatchNode


def make_dq(name: str = "www.example.com.", qtype: str = "A", rd: bool = True, tcp: bool = False,
            edns: bool = False, remote: str = "192.0.2.10") -> DNSQuestion:
    q = dnslib.DNSRecord.question(name, qtype)
    q.header.rd = int(rd)
    if edns:
        q.add_ar(dnslib.EDNS0(udp_len=4096, flags="do"))
    data = q.pack()
    end = 12 + len(DNSName.from_text(name).to_wire())
    return DNSQuestion(data, end, (data[end] << 8) | data[end + 1], 1, (remote, 5300), None, tcp)


def smn(*names: str) -> SuffixMatchNode:
    s = SuffixMatchNode()
    for n in names:
        s.add(DNSName.from_text(n))
    return s


@pytest.mark.parametrize("sel,text", [
    (S.AllRule(), "All"),
    (S.QNameRule(DNSName.from_text("Www.Example.com")), "qname==Www.Example.com."),
    (S.QTypeRule(28), "qtype==AAAA"),
    (S.QClassRule(3), "qclass==3"),
    (S.RegexRule(r"^ads[0-9]+\."), r"Regex: ^ads[0-9]+\."),
    (S.SuffixMatchNodeRule(smn("b.example.", "a.com", "z.org", "x.", "Y.net")),
     "qname in b.example., z.org., a.com., Y.net., x."),
    (S.NetmaskGroupRule(NetmaskGroup(["192.0.2.0/24", "10.0.0.0/8", "::1"])),
     "Src: 10.0.0.0/8, 192.0.2.0/24, ::1/128"),
    (S.AndRule([S.QTypeRule(1), S.TCPRule(True)]), "(qtype==A) && (TCP)"),
    (S.OrRule([S.QTypeRule(1), S.TCPRule(False)]), "(qtype==A) || (UDP)"),
    (S.NotRule(S.RDRule()), "!(rd==1)"),
    (S.OpcodeRule(5), "opcode==5"),
    (S.DNSSECRule(), "DNSSEC"),
    (S.MaxQPSIPRule(10), "IP (/32, /64) match for QPS over 10 burst 10"),
    (S.MaxQPSIPRule(10, 24, 48, 20), "IP (/24, /48) match for QPS over 10 burst 20"),
    (S.MaxQPSRule(10, 20), "Max 10 qps"),
    (S.QNameLabelsCountRule(1, 10), "labels count < 1 || labels count > 10"),
    (S.QNameWireLengthRule(1, 100), "wire length < 1 || wire length > 100"),
    (S.RecordsCountRule(1, 0, 5), "0 <= records in AN <= 5"),
    (S.RecordsTypeCountRule(1, 1, 0, 5), "0 <= A records in AN <= 5"),
    (S.ProbaRule(0.5), "match with prob. 0.50"),
    (S.TagRule("k", "v"), "tag 'k' is set to 'v'"),
    (S.RCodeRule(3), "rcode==Non-Existent domain"),
    (S.ERCodeRule(16), "ercode==Bad OPT Version / TSIG Signature Failure"),
    (S.DSTPortRule(53), "dst port==53"),
])
def test_selector_text(sel: S.Selector, text: str) -> None:
    assert str(sel) == text


@pytest.mark.parametrize("act,text", [
    (A.AllowAction(), "allow"), (A.DropAction(), "drop"), (A.NoneAction(), "no op"),
    (A.PoolAction("abc"), "to pool abc"), (A.QPSPoolAction(10, "abc"), "max 10 to pool abc"),
    (A.QPSAction(10), "qps limit to 10"), (A.RCodeAction(3), "set rcode 3"),
    (A.ERCodeAction(16), "set ercode Bad OPT Version / TSIG Signature Failure"),
    (A.SpoofAction(["192.0.2.1", "2001:db8::1"]), "spoof in 192.0.2.1 2001:db8::1 "),
    (A.SpoofAction(cname=DNSName.from_text("Target.Example")), "spoof in Target.Example. "),
    (A.SpoofRawAction([b"x"]), "spoof in raw bytes "), (A.TCAction(), "tc=1 answer"),
    (A.SetNoRecurseAction(), "set rd=0"), (A.SetDisableValidationAction(), "set cd=1"),
    (A.SetSkipCacheAction(), "skip cache"), (A.DelayAction(100), "delay by 100 msec"),
    (A.SetTagAction("k", "v"), "set tag 'k' to value 'v'"),
    (A.ContinueAction(A.PoolAction("x")), "continue after: to pool x"),
    (A.SetECSPrefixLengthAction(24, 56), "set ECS prefix length to 24/56"),
])
def test_action_text(act: A.Action, text: str) -> None:
    assert str(act) == text


def test_show_rules_layout_matches_dnsdist() -> None:
    c = RuleChain("query")
    c.add(Rule(S.AllRule(), A.PoolAction("abc"), "Pool"))
    lines = c.show()
    assert lines[0] == ("#   Name                             Matches Rule"
                        + " " * 53 + "Action")
    assert lines[1] == "0   Pool                                   0 All" + " " * 54 + "to pool abc"
    wide = c.show(show_uuids=True)
    assert wide[0].startswith("#   Name                           UUID" + " " * 35 + "Cr. Order   Matches Rule")


def test_chain_edits() -> None:
    c = RuleChain("query")
    for name in ("a", "b", "c"):
        c.add(Rule(S.AllRule(), A.NoneAction(), name))
    c.move(0, 2)                        # as dnsdist 1.7.3: lands before the old #2
    assert [r.name for r in c.rules] == ["b", "a", "c"]
    c.move(0, 3)                        # the size is a valid target: the end
    assert [r.name for r in c.rules] == ["a", "c", "b"]
    c.to_top()
    assert [r.name for r in c.rules] == ["b", "a", "c"]
    with pytest.raises(ChainError, match="invalid index"):
        c.move(0, 4)
    c.remove("b")
    c.remove(c.rules[0].uuid)
    assert [r.name for r in c.rules] == ["c"]
    with pytest.raises(ChainError, match="non-existing"):
        c.remove(5)
    with pytest.raises(ChainError, match="no rule matched"):
        c.remove("zzz")


def test_chain_verdicts_and_counters() -> None:
    rules = (Rule(S.QTypeRule(16), A.DropAction()),
             Rule(S.AllRule(), A.SetTagAction("t", "1")),
             Rule(S.TagRule("t", "1"), A.PoolAction("p")))
    dq = make_dq()
    assert run_query_chain(rules, dq) == (A.POOL, "p")
    assert dq.pool == "p" and [r.matches for r in rules] == [0, 1, 1]
    assert run_query_chain(rules, make_dq(qtype="TXT")) == (A.DROP, None)


def test_truncate_continues_over_tcp() -> None:
    rules = (Rule(S.AllRule(), A.TCAction()),)
    assert run_query_chain(rules, make_dq(tcp=False))[0] == A.TRUNCATE
    assert run_query_chain(rules, make_dq(tcp=True))[0] == A.NONE


def test_selectors_on_packets() -> None:
    dq = make_dq("ads12.Example.COM.", rd=False, edns=True)
    assert S.RegexRule(r"^ads[0-9]+\.example").matches(dq)
    assert S.SuffixMatchNodeRule(smn("example.com")).matches(dq)
    assert not S.SuffixMatchNodeRule(smn("ample.com")).matches(dq)
    assert S.QNameRule(DNSName.from_text("ADS12.example.com")).matches(dq)
    assert not S.RDRule().matches(dq) and S.DNSSECRule().matches(dq)
    assert S.QNameLabelsCountRule(1, 2).matches(dq) and not S.QNameLabelsCountRule(1, 3).matches(dq)
    assert S.NetmaskGroupRule(NetmaskGroup(["192.0.2.0/24"])).matches(dq)
    lim = S.MaxQPSIPRule(2)
    assert [lim.matches(dq) for _ in range(3)] == [False, False, True]


def test_rcode_and_spoof_actions_edit_the_packet() -> None:
    dq = make_dq(rd=True)
    assert A.RCodeAction(5)(dq) == (A.HEADER_MODIFY, None)
    assert dq.qr and dq.rcode == 5 and dq.get_flag(3, 0x80)       # RA copied from RD
    dq = make_dq(qtype="AAAA")
    assert A.SpoofAction(["192.0.2.1"])(dq) == A.CONTINUE        # no address of that family
    A.SpoofAction(["192.0.2.1", "2001:db8::1"])(dq)
    rec = dnslib.DNSRecord.parse(bytes(dq.data))
    assert [str(r.rdata) for r in rec.rr] == ["2001:db8::1"] and rec.rr[0].ttl == 60


@pytest.mark.parametrize("pattern,name,hit", [
    (r"^y[[:digit:]]", "y1.test.", True), (r"^y[[:digit:]]", "yd.test.", False),
    (r"^x\d", "x1.test.", False), (r"^x\d", "xd.test.", False),       # glibc: no \d
    (r"^v[[:alpha:]]+[0-9]", "vab1.test.", True), (r"^r[^[:space:]]c", "rbc.test.", True),
    (r"^U[A-Z]", "ub.test.", True), (r"^t(a|b){2}\.", "tab.test.", True),
    (r"^t(a|b){2}\.", "tabc.test.", False), (r"^w\w+\.w2", "wabc.w2.test.", True),
])
def test_regex_rule_posix_semantics(pattern: str, name: str, hit: bool) -> None:
    """Outcomes taken from real dnsdist 1.7.3 on the same names."""
    assert S.RegexRule(pattern).matches(make_dq(name)) is hit


def test_regex_rule_unterminated_bracket_does_not_compile() -> None:
    import re
    with pytest.raises(re.error):
        S.RegexRule("a[b")


def test_max_qps_ip_rule_masks_burst_and_expiry() -> None:
    rule = S.MaxQPSIPRule(1, 24, 64, 3, expiration=300, cleanup_delay=60)
    hits = [rule.matches(make_dq(remote="192.0.2.10")) for _ in range(5)]
    assert hits == [False, False, False, True, True]          # burst 3, then over the rate
    assert rule.matches(make_dq(remote="192.0.2.99"))          # same /24: same bucket
    assert not rule.matches(make_dq(remote="198.51.100.1"))    # another /24
    for lim in rule.limiters.values():
        lim.last -= 400                                        # 400 s without a query
    rule.cleanup(rule.next_cleanup)
    assert rule.limiters == {}
