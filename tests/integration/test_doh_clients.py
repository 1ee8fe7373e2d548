"""addDOHLocal with real clients, on pydist and on dnsdist 1.7.3 alike: dnspython's DoH
client (HTTP/1.1 and HTTP/2, GET and POST) and kdig +https get answers, the log lines are
dnsdist's, DoH queries share the UDP cache key (dnsdist adds an OPT RR of 4096 to a query
without one and sends it over UDP), and getDOHFrontend(n) reloads and rotates."""
from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from pathlib import Path

import dns.message
import dns.query
import pytest

from tests.conftest import BOTH, Starter
from tests.helpers.doh import b64, client, do, query_wire
from tests.helpers.dot import CertSet, make_cert_set
from tests.helpers.pydist_proc import query, run_cli

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
addDOHLocal("127.0.0.1:{portdoh}", "CERT", "PRIV")
addDOHLocal("127.0.0.1:{portplain}", nil, nil, {"/q"}, {serverTokens="tok",
            sendCacheControlHeaders=false, customResponseHeaders={
              ["X-Foo"]="a", ["Access-Control-Allow-Origin"]="*", ["strict-transport-security"]="1"}})
newServer({address="{backend}"})
pc = newPacketCache(1000)
getPool(""):setCache(pc)
""".replace("KEY", KEY)


@pytest.fixture
def certs(tmp_path: Path) -> CertSet:
    return make_cert_set(tmp_path / "certs")


def _start(start_proc: Starter, impl: str, certs: CertSet, backend: str):
    conf = CONF.replace("CERT", certs.cert).replace("PRIV", certs.key)
    return start_proc(impl, conf, {"backend": backend})


def console(proc, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout + res.stderr


@pytest.mark.parametrize("impl", BOTH)
def test_dnspython_and_kdig_get_answers(impl: str, start_proc: Starter, responder, certs) -> None:
    proc = _start(start_proc, impl, certs, responder.address)
    doh, plain = proc.addr("portdoh")[1], proc.addr("portplain")[1]
    assert f"Listening on 127.0.0.1:{doh} for DoH" in proc.output.splitlines()
    assert f"Listening on 127.0.0.1:{plain} for DoH" in proc.output.splitlines()
    assert (f"No certificate provided for DoH endpoint 127.0.0.1:{plain}, running in DNS over "
            "HTTP mode instead of DNS over HTTPS") in proc.output.splitlines()
    q = dns.message.make_query("dnspython.example.", "A")
    verify = ssl.create_default_context(cafile=certs.ca_path)
    for version in (dns.query.HTTPVersion.H1, dns.query.HTTPVersion.H2):
        for post in (True, False):
            ans = dns.query.https(q, "127.0.0.1", port=doh, path="/dns-query", post=post,
                                  verify=verify, http_version=version, timeout=5)
            assert ans.answer[0][0].address == "192.0.2.1", (version, post)
            assert ans.id == q.id
    kdig = shutil.which("kdig")
    assert kdig, "kdig (knot-dnsutils) is needed"
    out = subprocess.run([kdig, "+https", f"+tls-ca={certs.ca_path}", "+tls-hostname=dot.test",
                          "@127.0.0.1", "-p", str(doh), "kdig.example.", "A"],
                         capture_output=True, text=True, timeout=10)
    assert "(HTTP/2-POST)" in out.stdout and "(status: 200)" in out.stdout, out.stdout
    assert re.search(r"kdig\.example\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1", out.stdout), out.stdout
    # plain HTTP, HTTP/1.1 and HTTP/2 (prior knowledge): serverTokens, no Cache-Control
    for http2 in (False, True):
        with client(http2, plain=True) as c:
            r = do(c, f"http://127.0.0.1:{plain}", "GET",
                   f"/q?dns={b64(query_wire('plain.example.'))}")
        assert r.status == 200 and ("server", "tok") in r.headers
        # std::map order of the names as written, sent lowercase
        custom = [k for k, _ in r.headers if k in ("access-control-allow-origin", "x-foo",
                                                   "strict-transport-security")]
        assert custom == ["access-control-allow-origin", "x-foo", "strict-transport-security"]
        assert not any(k == "cache-control" for k, _ in r.headers)
        assert dns.message.from_wire(r.body).answer[0][0].address == "192.0.2.1"


@pytest.mark.parametrize("impl", BOTH)
def test_doh_shares_the_udp_cache_key(impl: str, start_proc: Starter, responder, certs) -> None:
    """A UDP query carrying an OPT RR of 4096 fills the entry a DoH query without EDNS hits;
    the DoH answer comes back without the OPT RR dnsdist added; TCP keeps its own key."""
    proc = _start(start_proc, impl, certs, responder.address)
    assert query(proc.addr(), "shared.example.", use_edns=0, payload=4096) is not None
    with client(False, certs.ca_path) as c:
        base = f"https://127.0.0.1:{proc.addr('portdoh')[1]}"
        r = do(c, base, "GET", f"/dns-query?dns={b64(query_wire('shared.example.'))}")
        assert r.status == 200
        assert responder.count("shared.example.") == 1
        assert dns.message.from_wire(r.body).edns == -1      # the OPT RR taken off again
        assert query(proc.addr(), "tcp.example.", tcp=True) is not None
        r = do(c, base, "GET", f"/dns-query?dns={b64(query_wire('tcp.example.'))}")
        assert r.status == 200 and responder.count("tcp.example.") == 2
    seen = [(t, len(d)) for t, _, d in responder.raw if b"\x03tcp\x07example" in d]
    assert [t for t, _ in seen] == ["tcp", "udp"]            # DoH goes to the backend over UDP
    # the pool counts each DoH lookup: the TCP key, then the UDP key (hit for shared.example)
    stats = console(proc, "getPool(''):getCache():getStats()['hits'] .. ' ' .. "
                          "getPool(''):getCache():getStats()['misses']")
    assert stats.split() == ["1", "5"], stats


@pytest.mark.parametrize("impl", BOTH)
def test_frontend_methods_reload_and_rotate(impl: str, start_proc: Starter, responder,
                                            certs) -> None:
    proc = _start(start_proc, impl, certs, responder.address)
    assert console(proc, "getDOHFrontendCount()").strip().endswith("2")

    def keys() -> list[str]:
        rows = console(proc, "showDOHFrontends()").splitlines()
        return [r.split()[11] for r in rows if re.match(r"\d+\s", r)]
    assert keys() == ["1", "0"]
    console(proc, "getDOHFrontend(0):rotateTicketsKey()")
    console(proc, "getDOHFrontend(1):rotateTicketsKey()")        # plain HTTP: nothing to do
    assert keys() == ["2", "0"]
    other = certs.issue("other", names=("doh.test",))
    out = console(proc, f'getDOHFrontend(0):loadNewCertificatesAndKeys("{other.cert_path}", '
                        f'"{other.key_path}")')
    assert "rror" not in out
    console(proc, "getDOHFrontend(0):reloadCertificates()")
    ans = dns.query.https(dns.message.make_query("after.example.", "A"), "127.0.0.1",
                          port=proc.addr("portdoh")[1],
                          verify=ssl.create_default_context(cafile=certs.ca_path), timeout=5)
    assert ans.answer[0][0].address == "192.0.2.1"
    console(proc, "getDOHFrontend(7)")
    proc.wait_for(r"^Error: trying to get DOH frontend with index 7u but we only have 2u "
                  r"frontend\(s\)$")
