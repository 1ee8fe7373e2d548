"""addDOHLocal side by side with real dnsdist 1.7.3: the same requests (HTTP/1.1 and HTTP/2,
HTTPS and plain HTTP, GET and POST, good and bad) get the same statuses, headers and answers,
and leave the same counters in showDOHFrontends, showDOHResponseCodes, /metrics and the API."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Starter, available_impls
from tests.helpers.doh import Reply, b64, client, do, query_wire
from tests.helpers.dot import make_cert_set
from tests.helpers.pydist_proc import poll_until, run_cli
from tests.helpers.web import get_json, metric_samples, request

pytestmark = pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")
KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="
CONF = """setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
controlSocket("127.0.0.1:{portctl}")
setKey("KEY")
webserver("127.0.0.1:{portweb}")
setWebserverConfig({apiKey="key1"})
addDOHLocal("127.0.0.1:{portdoh}", "CERT", "PRIV", {"/dns-query", "/other"},
            {customResponseHeaders={["x-foo"]="bar"}})
addDOHLocal("127.0.0.1:{portplain}")
newServer({address="{backend}"})
pc = newPacketCache(1000)
getPool(""):setCache(pc)
""".replace("KEY", KEY)
HEADERS = {"X-API-Key": "key1"}
STATS = ("queries", "responses", "latency-count", "noncompliant-queries", "cache-hits",
         "cache-misses", "acl-drops", "frontend-noerror", "frontend-nxdomain", "self-answered",
         "downstream-timeouts", "empty-queries")
GOOD = b64(query_wire("example.com."))
QR_SET = bytearray(query_wire("qr.example.")); QR_SET[2] |= 0x80
# (name, method, path, body): what dnsdist answers 200, 400 (its three texts), 404 (h2o's
# and its own exactPathMatching one), for GET, POST, PUT (read as GET) and HEAD
BATTERY = [
    ("get", "GET", f"/dns-query?dns={GOOD}", None),
    ("post", "POST", "/dns-query", query_wire("post.example.")),
    ("post-edns", "POST", "/dns-query", query_wire("edns.example.", edns=True)),
    ("second-url", "GET", f"/other?dns={GOOD}", None),
    ("put-as-get", "PUT", f"/dns-query?dns={GOOD}", None),
    ("head", "HEAD", f"/dns-query?dns={GOOD}", None),
    ("dns-not-first", "GET", f"/dns-query?foo=bar&dns={GOOD}", None),
    ("no-query-string", "GET", "/dns-query", None),
    ("empty-dns", "GET", "/dns-query?dns=", None),
    ("no-dns-param", "GET", "/dns-query?foo=barbaz", None),
    ("not-base64", "GET", "/dns-query?dns=!!!!", None),
    ("too-short", "GET", "/dns-query?dns=AAAA", None),
    ("header-only", "GET", "/dns-query?dns=AAAAAAAAAAAAAAAA", None),
    ("qr-set", "GET", f"/dns-query?dns={b64(bytes(QR_SET))}", None),
    ("post-empty", "POST", "/dns-query", b""),
    ("unknown-path", "GET", f"/foo?dns={GOOD}", None),
    ("url-prefix", "GET", f"/dns-queryx?dns={GOOD}", None),
    ("below-url", "GET", f"/dns-query/x?dns={GOOD}", None),
]


def console(proc, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout + res.stderr


def doh_samples(text: str, ports: tuple[int, int]) -> dict[str, float]:
    out = {}
    for k, v in metric_samples(text).items():
        for i, p in enumerate(ports):
            if f"127.0.0.1:{p}," in k:
                out[k.replace(str(p), f"PORT{i}")] = v
    return out


def strip_ports(text: str, ports: tuple[int, ...]) -> str:
    for i, p in enumerate(ports):
        text = text.replace(str(p), f"PORT{i}")
    return text


def run_battery(proc, ca: str) -> dict[str, Reply]:
    doh, plain = proc.addr("portdoh"), proc.addr("portplain")
    out: dict[str, Reply] = {}
    for http2 in (False, True):
        with client(http2, ca) as c:
            for name, method, path, body in BATTERY:
                out[f"https-h{2 if http2 else 1}-{name}"] = do(
                    c, f"https://127.0.0.1:{doh[1]}", method, path, body,
                    {"content-type": "application/dns-message"} if body is not None else None)
        with client(http2, plain=True) as c:
            for name, method, path, body in BATTERY[:3]:
                out[f"http-h{2 if http2 else 1}-{name}"] = do(
                    c, f"http://127.0.0.1:{plain[1]}", method, path, body)
    return out


def test_requests_answers_and_counters_match_dnsdist(start_proc: Starter, responder,
                                                     tmp_path: Path) -> None:
    certs = make_cert_set(tmp_path / "certs")
    conf = CONF.replace("CERT", certs.cert).replace("PRIV", certs.key)
    seen: dict[str, tuple] = {}
    for impl in available_impls():
        proc = start_proc(impl, conf, {"backend": responder.address})
        replies = run_battery(proc, certs.ca_path)
        ports = (proc.addr("portdoh")[1], proc.addr("portplain")[1])
        web = int(proc.values["portweb"])

        def scraped(web: int = web, ports: tuple[int, int] = ports) -> dict[str, float]:
            _, _, body = request(web, "/metrics", HEADERS)
            return doh_samples(body.decode(), ports)
        poll_until(lambda: scraped().get(
            "dnsdist_frontend_tcpcurrentconnections{frontend=127.0.0.1:PORT1,"
            "proto=TCP (DNS over HTTP),thread=0}") == 0)
        api = get_json(web, "/api/v1/servers/localhost", HEADERS)
        # the next ticket key rotation is a time: the column is masked
        fronts = re.sub(r"\d{10}\s*$", "T", console(proc, "showDOHFrontends()"),
                        flags=re.MULTILINE)
        seen[impl] = (replies, scraped(), strip_ports(str(api["dohFrontends"]), ports),
                      strip_ports(fronts, ports),
                      strip_ports(console(proc, "showDOHResponseCodes()"), ports),
                      strip_ports(console(proc, "showBinds()"), (proc.addr()[1],) + ports),
                      {k: v for k, v in re.findall(r"([a-z0-9-]+)\s+(\d+)",
                                                   console(proc, "dumpStats()")) if k in STATS})
    py, dd = seen["pydist"], seen["dnsdist"]
    for key, reply in dd[0].items():
        assert py[0][key].summary() == reply.summary(), key
    assert dd[0]["https-h1-get"].status == 200 and dd[0]["https-h2-unknown-path"].status == 404
    timing = ("tcpavgconnectionduration", "tcpavgqueriesperconnection")
    for key, value in dd[1].items():
        if not any(t in key for t in timing):
            assert py[1].get(key) == value, key
    assert set(py[1]) == set(dd[1])
    assert py[2] == dd[2]                 # the API's dohFrontends
    assert py[3] == dd[3] and "HTTP/2" in dd[3]
    assert py[4] == dd[4] and "- HTTP/2:" in dd[4]
    assert py[6] == dd[6] and dd[6]["latency-count"] != "0"
    assert py[5] == dd[5] and "TCP (DNS over HTTPS)" in dd[5] and "TCP (DNS over HTTP) " in dd[5]
