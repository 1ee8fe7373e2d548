"""A wildcard listener (0.0.0.0, ::) answers from the address each query was sent to, and
dq.localaddr (and the FFI get_localaddr) is that address, as dnsdist 1.7.3 does with
IP_PKTINFO: a query to 127.0.0.2 is answered from 127.0.0.2, on the cache-hit path and from a
backend alike; over TCP the connection's own address."""
from __future__ import annotations

import socket

import dns.message
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.pydist_proc import query

CONF = """setSecurityPollSuffix("")
setLocal("0.0.0.0:{port}")
addLocal("[::]:{port}")
newServer{address="{backend}"}
getPool(""):setCache(newPacketCache(100))
function localaddr(dq) return DNSAction.Spoof, dq.localaddr:toString() end
addAction("where.test.", LuaAction(localaddr))
local ffi = require("ffi")
addAction("ffi.test.", LuaFFIAction(function(dq)
  local p, sz = ffi.new("const void*[1]"), ffi.new("size_t[1]")
  ffi.C.dnsdist_ffi_dnsquestion_get_localaddr(dq, p, sz)
  local ip = string.format("%d.%d.%d.%d", ffi.string(p[0], sz[0]):byte(1, 4))
  ffi.C.dnsdist_ffi_dnsquestion_set_result(dq, ip, #ip)
  return DNSAction.Spoof
end))
"""


def _ask(family: int, host: str, port: int, name: str, rdtype: str) -> tuple[str, list[str]]:
    """(the address the answer came from, its records)."""
    q = dns.message.make_query(name, rdtype)
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q.to_wire(), (host, port))
        data, src = s.recvfrom(4096)
    r = dns.message.from_wire(data)
    return src[0], [str(x) for rr in r.answer for x in rr]


@pytest.mark.parametrize("impl", BOTH)
def test_answers_leave_from_the_queried_address(impl: str, start_proc: Starter,
                                                responder) -> None:
    proc = start_proc(impl, CONF, {"backend": responder.address})
    port = proc.addr()[1]
    for host in ("127.0.0.2", "127.0.0.3"):
        assert _ask(socket.AF_INET, host, port, "where.test.", "A") == (host, [host])
        src, records = _ask(socket.AF_INET, host, port, f"backend.{host[-1]}.test.", "A")
        assert src == host and records                       # a backend answer
        assert _ask(socket.AF_INET, host, port, f"backend.{host[-1]}.test.", "A")[0] == host
        assert _ask(socket.AF_INET, host, port, "ffi.test.", "A") == (host, [host])
        r = query((host, port), "where.test.", tcp=True)
        assert r is not None and [str(x) for rr in r.answer for x in rr] == [host]
    assert _ask(socket.AF_INET6, "::1", port, "where.test.", "AAAA") == ("::1", ["::1"])
