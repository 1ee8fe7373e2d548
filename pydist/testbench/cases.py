"""Test cases: one per line of a case file, or one per DNS query of a pcap.

A case line is a dnsperf query line (`qname qtype`) followed by `key=value` words:

    www.example.com A
    ads.example.com AAAA client=192.0.2.7 transport=tcp do=1 expect=NXDOMAIN
    api.example.com A expect=forward pool=abuse server=backup rule=2

Transport words: udp (default), tcp, dot, doh. The query carries no OPT record (as dnsperf
sends it) unless `edns=1` or `do=1` (the DNSSEC OK bit) asks for one; `bufsize=N` sets its
payload size, `rd=0` clears RD, `backend=` says how the stand-in backend answers (answer, nxdomain, servfail, refused, drop). Expectations (all optional, all
checked): `expect=` an outcome (drop, answer, forward, cache-hit, truncated) or an rcode name
(NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...), `pool=` the pool name ("" for the default pool),
`server=` the server's name or address, `rule=` the position, name or UUID of the query rule
that decided. `#` starts a comment."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

TRANSPORTS = ("udp", "tcp", "dot", "doh")
BACKEND_MODES = ("answer", "nxdomain", "servfail", "refused", "drop")
EXPECT_KEYS = ("expect", "pool", "server", "rule")


class CaseError(ValueError):
    """A case line that cannot be read: the line number and what is wrong with it."""


@dataclass
class Case:
    """One query to run, and what it should come to."""
    qname: str
    qtype: str = "A"
    client: str = "127.0.0.1"
    transport: str = "udp"
    do: bool = False
    edns: bool = False
    bufsize: int = 1232
    rd: bool = True
    backend: str = "answer"
    expect: dict[str, str] = field(default_factory=dict)
    line: int = 0
    text: str = ""
    wire: bytes | None = None       # a pcap's query, sent as captured

    @property
    def label(self) -> str:
        return f"case {self.line}" if self.line else "case"


def _flag(value: str, key: str, lineno: int) -> bool:
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise CaseError(f"line {lineno}: {key}= takes 0 or 1, not '{value}'")


def parse_case(text: str, lineno: int = 0) -> Case | None:
    """One line; None for a blank or comment line."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError as e:
        raise CaseError(f"line {lineno}: {e}") from None
    if not words:
        return None
    case = Case(qname=words[0], line=lineno, text=text.strip())
    rest = words[1:]
    if rest and "=" not in rest[0]:
        case.qtype = rest.pop(0).upper()
    for word in rest:
        key, sep, value = word.partition("=")
        if not sep:
            raise CaseError(f"line {lineno}: '{word}' is not key=value")
        _set(case, key.lower(), value, lineno)
    return case


def _set(case: Case, key: str, value: str, lineno: int) -> None:
    if key in EXPECT_KEYS:
        case.expect[key] = value
    elif key == "client":
        case.client = value
    elif key == "transport":
        if value.lower() not in TRANSPORTS:
            raise CaseError(f"line {lineno}: transport must be one of {', '.join(TRANSPORTS)}")
        case.transport = value.lower()
    elif key in ("do", "edns", "rd"):
        setattr(case, key, _flag(value, key, lineno))
    elif key == "bufsize":
        if not value.isdigit() or not 512 <= int(value) <= 65535:
            raise CaseError(f"line {lineno}: bufsize= takes 512 to 65535")
        case.bufsize = int(value)
    elif key == "backend":
        if value.lower() not in BACKEND_MODES:
            raise CaseError(f"line {lineno}: backend must be one of {', '.join(BACKEND_MODES)}")
        case.backend = value.lower()
    else:
        raise CaseError(f"line {lineno}: unknown key '{key}'")


def parse_cases(text: str) -> list[Case]:
    """Every case of a case file, in order."""
    cases = []
    for n, line in enumerate(text.splitlines(), 1):
        case = parse_case(line, n)
        if case is not None:
            cases.append(case)
    return cases


def cases_from_pcap(path: str) -> list[Case]:
    """The DNS queries of a capture (UDP and TCP to port 53), as captured, in order, from
    their captured source address; the comparer's pcap reader does the work (TCP streams
    reassembled). Raises CaseError when the file cannot be read."""
    import dns.message
    import dns.rdatatype

    from pydist.compare.traffic import PcapError, read_pcap
    try:
        queries, _ = read_pcap(path)
    except PcapError as e:
        raise CaseError(str(e)) from None
    cases = []
    for n, q in enumerate(queries, 1):
        question = dns.message.from_wire(q.wire, ignore_trailing=True).question[0]
        cases.append(Case(qname=str(question.name), qtype=dns.rdatatype.to_text(question.rdtype),
                          client=q.client or "127.0.0.1", transport="tcp" if q.tcp else "udp",
                          line=n, text=q.origin, wire=q.wire))
    return cases
