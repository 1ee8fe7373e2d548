"""The alter functions of the logging actions and RemoteLogAction's ipEncryptKey, pydist against
real dnsdist 1.7.3 on the same config: every setter of DNSDistProtoBufMessage on a query, an
answer and a cache hit (decoded messages compared field by field), the requestor enciphered
with ipcipher over IPv4 and IPv6, DnstapMessage:setExtra, and a failing alter function (the
query or answer dropped, nothing logged, no drop counted: dnsdist's exception path)."""
from __future__ import annotations

import re
import socket

import dns.message
import pytest

from tests.conftest import ResponderFactory, Starter
from tests.helpers.conf import console_prelude
from tests.helpers.pbdecode import decode
from tests.helpers.pydist_proc import poll_until, run_cli, send_message
from tests.integration.test_dnstap_diff import FrameStreamReader
from tests.integration.test_remotelog_diff import Collector, cname_chain

NESTED = {12: {}, 13: {2: {}}}
ALTER = """
rl = newRemoteLogger("127.0.0.1:COLLECTOR")
function everything(dq, msg)
  msg:setTag("t1")
  msg:setTagArray({"ta", "tb", [5]="tc"})
  msg:setRequestor(newCA("192.0.2.55:1234"))
  msg:setResponder(newCA("[2001:db8::1]:5353"))
  msg:setServerIdentity("alt-id")
  msg:setBytes(999)
  msg:setTime(1000, 2000)
  msg:setQueryTime(3000, 4000)
  msg:setResponseCode(5)
  msg:setEDNSSubnet(newNetmask("192.0.2.77/24"))
  msg:setQuestion(newDNSName("other.example."), 28, 3)
  msg:addResponseRR("rr.example", 1, 1, 77, "\\192\\0\\2\\1")
end
function strings(dq, msg)
  msg:setRequestorFromString("[2001:db8::9]:53")
  msg:setResponderFromString("192.0.2.9")
  msg:setProtobufResponseType(10, 20)
  msg:setTag(dq.qname:toString())
  if dq.qname:toString() == "err.example." then error("alter failed") end
end
function answers(dr, msg)
  msg:setResponseCode(3)
  msg:addResponseRR("extra.example.", 16, 1, 5, "txt")
  msg:setTag("answer")
  if dr.qname:toString() == "rerr.example." then error("alter failed") end
end
addAction(AllRule(), RemoteLogAction(rl, everything, {serverID="srv"}))
addAction(AllRule(), RemoteLogAction(rl, strings))
addAction(AllRule(), RemoteLogAction(rl, nil, {ipEncryptKey=makeIPCipherKey("secret")}))
addResponseAction(AllRule(), RemoteLogResponseAction(rl, answers, true, {serverID="r"}))
addCacheHitResponseAction(AllRule(), RemoteLogResponseAction(rl, answers, false,
                          {ipEncryptKey=makeIPCipherKey("other")}))
"""


def _normalized(raw: bytes) -> list[tuple[int, object]]:
    """Without what differs run to run: the times pydist and dnsdist take themselves (the first
    request time is kept when an alter function set it), the message id, the DNS id, the
    client's and the listener's ports (kept when set)."""
    fields = decode(raw, NESTED)
    out: list[tuple[int, object]] = []
    times = 0
    for number, value in fields:
        if number in (9, 10):
            times += 1
            if times > 2 or value not in (1000, 2000):
                continue
        if number in (2, 11) or (number == 20 and value not in (1234, 53)) or \
                (number == 21 and value not in (5353, 0)):
            continue
        if number == 13:
            value = [(n, v) for n, v in value if n not in (5, 6) or v in (3000, 4000, 10, 20)]
        out.append((number, value))
    return out


def _ask(where: tuple[str, int], name: str, tcp: bool = False) -> str:
    r = send_message(where, dns.message.make_query(name, "A"), tcp=tcp, timeout=1.5)
    return "timeout" if r is None else dns.rcode.to_text(r.rcode())


def _counters(conf: str) -> dict[str, str]:
    res = run_cli("pydist", ["-C", conf, "-e", "dumpStats()"])
    pairs = re.findall(r"(\S+)\s+(\S+)", res.stdout)
    return {k: v for k, v in pairs if k in ("queries", "rule-drop", "responses",
                                            "frontend-noerror", "cache-hits", "servfail-responses")}


def _run(impl: str, start_proc: Starter, responder_factory: ResponderFactory,
         v6: bool = False) -> tuple[list[bytes], list[str], dict[str, str]]:
    collector = Collector()
    conf = console_prelude(cache=100) + ALTER.replace("COLLECTOR", str(collector.port))
    if v6:
        conf += 'addLocal("[::1]:{port}")\n'
    proc = start_proc(impl, conf, {"backend": responder_factory(cname_chain).address})
    where = ("::1", proc.addr()[1]) if v6 else proc.addr()
    seen = [_ask(where, "www.example.com."), _ask(where, "www.example.com."),
            _ask(where, "www.example.com.", tcp=True), _ask(where, "err.example."),
            _ask(where, "rerr.example.")]
    poll_until(lambda: len(collector.messages) >= 15, timeout=8.0)
    return collector.messages, seen, _counters(str(proc.conf))


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_alter_and_ipencrypt_as_dnsdist(family: str, start_proc: Starter,
                                        responder_factory: ResponderFactory) -> None:
    seen = {impl: _run(impl, start_proc, responder_factory, family == "v6")
            for impl in ("dnsdist", "pydist")}
    for impl in seen:
        seen[impl] = ([_normalized(m) for m in seen[impl][0]],) + seen[impl][1:]
    assert seen["pydist"][1] == seen["dnsdist"][1] == \
        ["NOERROR", "NOERROR", "NOERROR", "timeout", "timeout"]
    assert seen["pydist"][2] == seen["dnsdist"][2]
    assert seen["pydist"][2]["rule-drop"] == "0"
    assert seen["pydist"][0] == seen["dnsdist"][0]
    first = dict(seen["pydist"][0][0])
    assert first[9] == 1000 and first[3] == b"alt-id" and first[14] == bytes([192, 0, 2, 0])
    encrypted = dict(seen["pydist"][0][2])[6]
    assert encrypted != (bytes([127, 0, 0, 1]) if family == "v4" else bytes(15) + b"\x01")


DNSTAP = """
fs = newFrameStreamTcpLogger("127.0.0.1:COLLECTOR")
function extra(dq, msg)
  msg:setExtra("e1")
  msg:setExtra(dq.qname:toString())
  if dq.qname:toString() == "err.example." then error("alter failed") end
end
addAction(AllRule(), DnstapLogAction("ident", fs, extra))
addResponseAction(AllRule(), DnstapLogResponseAction("ident", fs, extra))
"""


def test_dnstap_extra_as_dnsdist(start_proc: Starter,
                                 responder_factory: ResponderFactory) -> None:
    seen = {}
    for impl in ("dnsdist", "pydist"):
        sock = socket.create_server(("127.0.0.1", 0))
        reader = FrameStreamReader(sock)
        conf = console_prelude() + DNSTAP.replace("COLLECTOR", str(sock.getsockname()[1]))
        proc = start_proc(impl, conf, {"backend": responder_factory().address})
        poll_until(lambda: len(reader.controls) >= 2)
        answers = [_ask(proc.addr(), "www.example.com."), _ask(proc.addr(), "err.example.")]
        poll_until(lambda: len(reader.frames) >= 2, timeout=8.0)
        extras = [[v for n, v in decode(f, {14: {}}) if n == 3] for f in reader.frames]
        seen[impl] = (answers, extras, _counters(str(proc.conf)))
    assert seen["pydist"] == seen["dnsdist"]
    assert seen["pydist"][1] == [[b"e1", b"www.example.com."]] * 2


IPCIPHER = """setSecurityPollSuffix("")
local k = makeIPCipherKey("secret")
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
print(#k, hex(k), hex(makeIPCipherKey("\\0\\255")))
for _, a in ipairs({"192.0.2.1", "127.0.0.1:53", "[2001:db8::1]:53", "[::ffff:1.2.3.4]:5"}) do
  local e = newCA(a):ipencrypt(k)
  print(e:toStringWithPort(), e:ipdecrypt(k):toStringWithPort(), newCA(a):ipdecrypt(k):toString())
end
print(newCA("192.0.2.1"):ipencrypt("short"):toString())
"""


def test_ipcipher_functions_as_dnsdist(tmp_path) -> None:
    conf = tmp_path / "ip.conf"
    conf.write_text(IPCIPHER)
    out = {impl: run_cli(impl, ["--check-config", "-C", str(conf)]) for impl in
           ("dnsdist", "pydist")}
    assert out["pydist"].returncode == out["dnsdist"].returncode == 1
    assert out["pydist"].stdout == out["dnsdist"].stdout
    assert "Need 128 bits of key for ipcrypt" in out["pydist"].stdout
    assert "154.37.200.149" in out["pydist"].stdout


VERBOSE = """
rl = newRemoteLogger("127.0.0.1:COLLECTOR")
function fails(dq, msg) error("alter failed") end
addAction("q.example.", RemoteLogAction(rl, fails))
addResponseAction("r.example.", RemoteLogResponseAction(rl, fails))
"""


@pytest.mark.parametrize("impl", ["dnsdist", "pydist"])
def test_failing_alter_function_in_verbose_mode(impl: str, start_proc: Starter,
                                                responder_factory: ResponderFactory) -> None:
    """dnsdist's exception lines, UDP and TCP, for a query and for an answer."""
    collector = Collector()
    backend = responder_factory()
    conf = console_prelude() + VERBOSE.replace("COLLECTOR", str(collector.port))
    proc = start_proc(impl, conf, {"backend": backend.address}, extra_args=("-v",))
    for name in ("q.example.", "r.example."):
        for tcp in (False, True):
            assert _ask(proc.addr(), name, tcp=tcp) == "timeout"
    client = rf"127\.0\.0\.1:\d+, id \d+: \[string \"chunk\"\]:\d+: alter failed"
    proc.wait_for(rf"Got an error while parsing a UDP query from {client}")
    proc.wait_for(rf"Got an error while parsing a TCP query from {client}")
    proc.wait_for(r"Got an error in UDP responder thread while parsing a response from "
                  rf"{re.escape(backend.address)}, id 0: \[string \"chunk\"\]:\d+: alter failed")
    proc.wait_for(r"Unexpected exception while handling response from backend: "
                  r"\[string \"chunk\"\]:\d+: alter failed")
    assert "\t[string \"chunk\"]:9: in function <[string \"chunk\"]:9>" in proc.output
    assert collector.messages == []
