"""Real dnsdist 1.7.3 and pydist with the same config and traffic, scraped side by side
(facts §7): metric names, types and labels; counters the traffic determines; the key sets of
every JSON endpoint; status codes and headers for each authentication case."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pydist.stats import DOT_LATENCY_NAMES
from pydist.web.credentials import hash_password
from tests.conftest import Starter, available_impls
from tests.helpers.pydist_proc import DnsdistProcess, poll_until, query, run_cli
from tests.helpers.web import basic, get_json, key_shape, metric_samples, metric_shapes, request

pytestmark = pytest.mark.skipif(len(available_impls()) < 2, reason="real dnsdist not installed")

CONFIG = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}", name="back.one", pool={"", "p2"}})
newServer({address="{backend2}"})
webserver("127.0.0.1:{portweb}")
setWebserverConfig({password=PW, apiKey=KEY})
getPool(""):setCache(newPacketCache(1000))
addAction("blocked.example.", RCodeAction(DNSRCode.REFUSED), {name="blk"})
"""
KEY = {"X-API-Key": "key1"}
# counters the same traffic must move the same way on both sides
SAME_VALUES = ("dnsdist_queries", "dnsdist_rdqueries", "dnsdist_responses", "dnsdist_cache_hits",
               "dnsdist_cache_misses", "dnsdist_rule_refused", "dnsdist_acl_drops",
               'dnsdist_rule_hits{id=blk}', 'dnsdist_pool_cache_hits{pool=_default_}',
               'dnsdist_pool_cache_entries{pool=_default_}',
               'dnsdist_pool_servers{pool=p2}', 'dnsdist_pool_servers{pool=_default_}')
JSON_PATHS = ("/jsonstat?command=stats", "/jsonstat?command=dynblocklist",
              "/api/v1/servers/localhost", "/api/v1/servers/localhost/statistics",
              "/api/v1/servers/localhost/config", "/api/v1/servers/localhost/config/allow-from",
              "/api/v1/servers/localhost/pool?name=", "/api/v1/servers/localhost/pool?name=p2")


def start_both(start_proc: Starter, responder_factory: Any, pw: str = '"secret"',
               key: str = '"key1"') -> dict[str, DnsdistProcess]:
    r1, r2 = responder_factory(), responder_factory()
    conf = CONFIG.replace("PW", pw).replace("KEY", key)
    return {impl: start_proc(impl, conf, {"backend": r1.address, "backend2": r2.address})
            for impl in available_impls()}


def web_port(p: DnsdistProcess) -> int:
    return int(p.values["portweb"])  # type: ignore[arg-type]


def traffic(p: DnsdistProcess) -> None:
    where = p.addr()
    for _ in range(3):
        assert query(where, "example.com") is not None
    assert query(where, "blocked.example") is not None
    assert query(where, "tcp.example", tcp=True) is not None
    assert query(where, "tcp.example", tcp=True) is not None     # a cache hit over TCP


def scrape_when_settled(p: DnsdistProcess) -> dict[str, float]:
    def settled() -> dict[str, float] | None:
        _, _, body = request(web_port(p), "/metrics", KEY)
        m = metric_samples(body.decode())
        # both TCP connections closed: 1 query each gives an average of 1 - 0.99**2
        tcp_closed = any(k.startswith("dnsdist_frontend_tcpavgqueriesperconnection{")
                         and v > 0.015 for k, v in m.items())
        return m if m.get("dnsdist_queries{}") == 6 and tcp_closed else None
    return poll_until(settled, timeout=5.0)  # type: ignore[return-value]


def bare(samples: dict[str, float]) -> dict[str, float]:
    return {k.replace("{}", ""): v for k, v in samples.items()}


def test_metrics_and_json_match_dnsdist(start_proc: Starter, responder_factory: Any) -> None:
    procs = start_both(start_proc, responder_factory)
    for p in procs.values():
        traffic(p)
    metrics = {impl: scrape_when_settled(p) for impl, p in procs.items()}
    texts = {impl: request(web_port(p), "/metrics", KEY)[2].decode() for impl, p in procs.items()}
    shapes = {impl: metric_shapes(t) for impl, t in texts.items()}
    assert shapes["pydist"] == shapes["dnsdist"], (
        f"only dnsdist: {sorted(shapes['dnsdist'] - shapes['pydist'])[:10]}\n"
        f"only pydist: {sorted(shapes['pydist'] - shapes['dnsdist'])[:10]}")
    for impl, t in texts.items():
        helps = [ln for ln in t.splitlines() if ln.startswith("#")]
        assert helps == [ln for ln in texts["dnsdist"].splitlines() if ln.startswith("#")], impl
    # every sample line in the same order, with the same labels (ports and UUIDs masked)
    samples = {impl: [re.sub(r"[0-9a-f-]{36}", "U", re.sub(r":\d+", ":P", ln.split(" ")[0]))
                      for ln in t.splitlines() if ln and not ln.startswith("#")]
               for impl, t in texts.items()}
    assert samples["pydist"] == samples["dnsdist"]
    d, py = bare(metrics["dnsdist"]), bare(metrics["pydist"])
    for name in SAME_VALUES:
        assert py[name] == d[name], name
    for name in ("queries", "responses", "drops", "senderrors", "tcpnewconnections",
                 "tcpgaveup", "outstanding"):
        # which server of the pool got a query is the policy's choice: compare the totals
        total = {impl: sum(v for k, v in bare(m).items()
                           if k.startswith(f"dnsdist_server_{name}{{"))
                 for impl, m in metrics.items()}
        assert total["pydist"] == total["dnsdist"], (name, total)
        if name == "queries":
            assert total["pydist"] == 2
    for name in ("dnsdist_frontend_queries", "dnsdist_frontend_responses",
                 "dnsdist_frontend_tcpavgqueriesperconnection"):
        for proto in ("UDP", "TCP"):
            per = {impl: sum(v for k, v in bare(m).items()
                             if k.startswith(name + "{") and f"proto={proto}" in k)
                   for impl, m in metrics.items()}
            assert per["pydist"] == per["dnsdist"], (name, proto, per)
    for path in JSON_PATHS:
        shapes_j = {impl: key_shape(get_json(web_port(p), path, KEY)) for impl, p in procs.items()}
        assert shapes_j["pydist"] == shapes_j["dnsdist"], path
    stats = {impl: get_json(web_port(p), "/jsonstat?command=stats", KEY)
             for impl, p in procs.items()}
    for k in ("queries", "cache-hits", "cache-misses", "rule-refused", "acl-drops"):
        assert stats["pydist"][k] == stats["dnsdist"][k], k
    info = {impl: get_json(web_port(p), "/api/v1/servers/localhost", KEY)
            for impl, p in procs.items()}
    for impl in procs:
        assert [s["pools"] for s in info[impl]["servers"]] == [["", "p2"], []], impl
        assert [r["matches"] for r in info[impl]["rules"]] == [1], impl


AUTH_CASES = [
    ("/metrics", {}, "GET"), ("/metrics", basic("u", "wrong"), "GET"),
    ("/metrics", basic("u", "secret"), "GET"), ("/metrics", KEY, "GET"),
    ("/metrics", {"X-API-Key": "nope"}, "GET"),
    ("/jsonstat?command=stats", basic("u", "secret"), "GET"),
    ("/api/v1/servers/localhost", basic("u", "secret"), "GET"),
    ("/api/v1/servers/localhost/statistics", basic("u", "secret"), "GET"),
    ("/api/v1/servers/localhost/statistics", dict(KEY, Origin="http://o.example"), "GET"),
    ("/metrics", dict(KEY, Origin="http://o.example"), "GET"),
    ("/api/v1/servers/localhost", dict(KEY, Origin="http://o.example"), "GET"),
    ("/", KEY, "GET"), ("/", basic("u", "secret"), "GET"), ("/api/v1/nothing", KEY, "GET"),
    ("/nothing", {}, "GET"), ("/nothing", basic("u", "secret"), "GET"), ("/", KEY, "POST"),
    ("/jsonstat", KEY, "GET"), ("/jsonstat?command=nope", KEY, "GET"),
    ("/api/v1/servers/localhost/pool", KEY, "GET"),
    ("/api/v1/servers/localhost/pool?name=x", KEY, "GET"),
    ("/metrics", KEY, "POST"), ("/metrics", KEY, "DELETE"),
    ("/api/v1/servers/localhost/config/allow-from", KEY, "PUT"),
    ("/api/v1/servers/localhost/config/allow-from", {"Origin": "http://o.example"}, "OPTIONS"),
    ("/metrics", {}, "OPTIONS"),
]
IGNORED_HEADERS = ("transfer-encoding", "content-length", "content-type")


def answers(procs: dict[str, DnsdistProcess], cases: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for impl, p in procs.items():
        rows = []
        for path, headers, method in cases:
            status, hdrs, body = request(web_port(p), path, headers, method)
            kept = {k: v for k, v in hdrs.items() if k not in IGNORED_HEADERS}
            rows.append((path, method, status, kept, body if status == 401 else None,
                         hdrs.get("content-type")))
        out[impl] = rows
    return out


def test_status_and_headers_for_each_auth_case(start_proc: Starter, responder_factory: Any) -> None:
    procs = start_both(start_proc, responder_factory)
    got = answers(procs, AUTH_CASES)
    for mine, theirs in zip(got["pydist"], got["dnsdist"], strict=True):
        assert mine[:5] == theirs[:5]
        if mine[2] == 200:
            assert mine[5] == theirs[5], mine[:2]


def test_hashed_credentials_on_both(start_proc: Starter, responder_factory: Any) -> None:
    # hashes made by pydist must verify in dnsdist, and dnsdist's (for "x") in pydist
    dnsdist_hash_of_x = ("$scrypt$ln=10,p=1,r=8$eGueCZf0CyOmM9uwvRLfxA==$"
                         "XvD/n5BBjDTHBOhzibVZtnu8jTRVGZ0VpwmXVdoa8M8=")
    procs = start_both(start_proc, responder_factory, pw=json.dumps(hash_password("secret")),
                       key=json.dumps(dnsdist_hash_of_x))
    cases = [("/", basic("u", "secret"), "GET"),
             ("/api/v1/servers/localhost", basic("u", "bad"), "GET"),
             ("/metrics", {"X-API-Key": "x"}, "GET"), ("/metrics", {"X-API-Key": "key1"}, "GET"),
             ("/api/v1/servers/localhost", basic("u", "secret"), "GET")]
    got = answers(procs, cases)
    statuses = {impl: [r[2] for r in rows] for impl, rows in got.items()}
    assert statuses["pydist"] == statuses["dnsdist"] == [200, 401, 200, 401, 200]
    for impl, p in procs.items():
        assert "plain-text" not in p.output, impl


def test_startup_lines_without_password(start_proc: Starter) -> None:
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'webserver("127.0.0.1:{portweb}")\n')
    for impl in available_impls():
        p = start_proc(impl, conf)
        where = f"127.0.0.1:{web_port(p)}"
        p.wait_for(f"^Webserver launched on {where} without a password set!$")
        assert f"Webserver launched on {where}" in p.output.splitlines()
        status, _, _ = request(web_port(p), "/", basic("any", "thing"))
        assert status == 200, impl
        assert request(web_port(p), "/")[0] == 401, impl


def test_deprecated_webserver_arguments_and_show_config(start_proc: Starter, port: int) -> None:
    key = "+Diu6v4CxCFAASeDmQqX7m7jdohLH2TderAlLQ6A+ik="
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'controlSocket("127.0.0.1:{portconsole}")\nsetKey("' + key + '")\n'
            'webserver("127.0.0.1:{portweb}", "pw", "apikey", {["X-Foo"]="bar"}, "127.0.0.1")\n'
            'setAPIWritable(false, "/nonexistent")\n')
    seen = {}
    for impl in available_impls():
        p = start_proc(impl, conf)
        p.wait_for("^Webserver launched on ")
        lines = [ln.replace(str(web_port(p)), "<web>") for ln in p.output.splitlines()
                 if "ebserver" in ln or "plain-text" in ln]
        status, headers, _ = request(web_port(p), "/metrics", {"X-API-Key": "apikey"})
        res = run_cli(impl, ["-C", str(p.conf), "-e", "showWebserverConfig()"])
        seen[impl] = (lines, status, headers.get("x-foo"), res.stdout)
    for i in range(4):
        assert seen["pydist"][i] == seen["dnsdist"][i], i
    assert "Custom headers: \n - X-Foo: bar\n" in seen["pydist"][3]


def test_down_servers_and_ipv6_listener(start_proc: Starter, responder_factory: Any,
                                        port: int) -> None:
    r1 = responder_factory()
    silent = responder_factory()
    silent.silent = True
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'newServer({address="{backend}", name="up.one"})\n'
            'newServer({address="{backend}", name="forced.down"}):setDown()\n'
            'newServer({address="{silent}", name="auto.down", checkTimeout=200})\n'
            'webserver("[::1]:{portweb}")\nsetWebserverConfig({apiKey="key1", acl="::1"})\n')
    seen = {}
    for impl in available_impls():
        p = start_proc(impl, conf, {"backend": r1.address, "silent": silent.address})
        def settled(p: DnsdistProcess = p) -> Any:
            d = get_json(web_port(p), "/api/v1/servers/localhost", KEY, host="::1")
            return d if d["servers"][0]["state"] == "up" else None
        info = poll_until(settled, timeout=5.0)
        text = request(web_port(p), "/metrics", KEY, host="::1")[2].decode()
        lat = sorted(ln.split("{")[1].split(",")[0] for ln in text.splitlines()
                     if ln.startswith("dnsdist_server_latency{"))
        status = {k.split(",")[1]: v for k, v in metric_samples(text).items()
                  if k.startswith("dnsdist_server_status")}
        seen[impl] = ([(s["name"], s["state"], s["latency"] is None) for s in info["servers"]],
                      lat, sorted(status.values()), metric_shapes(text))
    assert seen["pydist"][:3] == seen["dnsdist"][:3]
    assert seen["pydist"][0] == [("up.one", "up", False), ("forced.down", "DOWN", True),
                                 ("auto.down", "down", False)]
    assert seen["pydist"][1] == ['server="up_one"']
    assert seen["pydist"][3] == seen["dnsdist"][3]


def test_register_web_handler_on_both(start_proc: Starter) -> None:
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'webserver("127.0.0.1:{portweb}")\nsetWebserverConfig({password="pw", apiKey="k"})\n'
            'registerWebHandler("/custom", function(req, resp)\n'
            '  resp.status = 202\n'
            '  resp.headers = {["X-Got"] = req.method .. " " .. (req.getvars["a"] or "-") ..'
            ' " v" .. tostring(req.version)}\n'
            '  resp.body = "hello " .. req.path .. " " .. tostring(req.headers["x-thing"])\n'
            'end)\n')
    seen = {}
    for impl in available_impls():
        p = start_proc(impl, conf)
        rows = []
        for headers in ({}, {"X-API-Key": "k"}, basic("a", "pw")):
            status, hdrs, body = request(web_port(p), "/custom?a=1",
                                         dict(headers, **{"X-Thing": "t"}))
            rows.append((status, {k: v for k, v in hdrs.items() if k not in IGNORED_HEADERS}, body))
        seen[impl] = rows
    assert seen["pydist"] == seen["dnsdist"]
    assert seen["pydist"][2] == (202, {"x-got": "GET 1 v11"}, b"hello /custom t")


def test_allow_from_put_on_both(start_proc: Starter, tmp_path: Any) -> None:
    seen = {}
    for impl in available_impls():
        apidir = tmp_path / f"api-{impl}"
        apidir.mkdir()
        conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
                'webserver("127.0.0.1:{portweb}")\nsetWebserverConfig({apiKey="k"})\n'
                f'setAPIWritable(true, "{apidir}")\n')
        p = start_proc(impl, conf)
        path = "/api/v1/servers/localhost/config/allow-from"
        rows = [request(web_port(p), path, {"X-API-Key": "k"}, "PUT", body)[::2]
                for body in (b'{"value": ["192.0.2.0/24", "127.0.0.1"]}', b'{"value": ["bad"]}',
                             b"nonjson")]
        p.wait_for("^Updating the ACL via the API to 127.0.0.1/32, 192.0.2.0/24$")
        answered = query(p.addr(), "a.example") is not None
        seen[impl] = (rows, (apidir / "acl.conf").read_text(), answered)
    assert seen["pydist"] == seen["dnsdist"]
    assert seen["pydist"][0][1][0] == 400


def test_dynblocklist_on_both(start_proc: Starter) -> None:
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'webserver("127.0.0.1:{portweb}")\nsetWebserverConfig({apiKey="key1"})\n'
            'addDynBlocks({[newCA("192.0.2.1")]=3}, "rate too high", 60)\n'
            'addDynBlockSMT({"bad.example."}, "smt reason", 30, DNSAction.Refused)\n')
    seen = {}
    for impl in available_impls():
        p = start_proc(impl, conf)
        seen[impl] = get_json(web_port(p), "/jsonstat?command=dynblocklist", KEY)
    assert key_shape(seen["pydist"]) == key_shape(seen["dnsdist"])
    assert set(seen["pydist"]) == {"192.0.2.1/32", "bad.example."}
    for what, entry in seen["pydist"].items():
        theirs = seen["dnsdist"][what]
        assert abs(entry.pop("seconds") - theirs.pop("seconds")) <= 2, what
        assert entry == theirs, what


def test_dot_frontend_metrics_on_both(start_proc: Starter, responder_factory: Any,
                                      tmp_path: Any) -> None:
    from tests.helpers.dot import dot_query, make_cert_set
    certs = make_cert_set(tmp_path / "certs")
    backend = responder_factory()
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            f'addTLSLocal("127.0.0.1:{{portdot}}", "{certs.cert}", "{certs.key}")\n'
            'newServer({address="{backend}"})\n'
            'getPool(""):setCache(newPacketCache(100))\n'
            'addAction("spoof.example.", SpoofAction("192.0.2.7"))\n'
            'webserver("127.0.0.1:{portweb}")\nsetWebserverConfig({apiKey="key1"})\n')
    seen = {}
    for impl in available_impls():
        p = start_proc(impl, conf, {"backend": backend.address})
        assert dot_query(p.addr("portdot"), "dot.example.", certs.ca_path) is not None
        assert dot_query(p.addr("portdot"), "dot.example.", certs.ca_path) is not None  # hit
        assert dot_query(p.addr("portdot"), "spoof.example.", certs.ca_path) is not None

        def settled(p: DnsdistProcess = p) -> Any:
            m = bare(metric_samples(request(web_port(p), "/metrics", KEY)[2].decode()))
            got = {k.split("tls=")[1].rstrip("}"): v for k, v in m.items()
                   if k.startswith("dnsdist_frontend_tlsqueries{")}
            return (m, got) if sum(got.values()) == 3 else None
        m, per_version = poll_until(settled, timeout=5.0)  # type: ignore[misc]
        text = request(web_port(p), "/metrics", KEY)[2].decode()
        info = get_json(web_port(p), "/api/v1/servers/localhost", KEY)
        dot = [f for f in info["frontends"] if f["type"] == "TCP (DNS over TLS)"]
        seen[impl] = (metric_shapes(text), per_version, key_shape(dot), dot[0]["tls13Queries"],
                      sorted(k for k in m if "DNS over TLS" in k and "tcp" not in k),
                      (dot[0]["queries"], dot[0]["responses"]), m)
    # latency-dot-avg*: issue 6 names them (later dnsdist has them, 1.7.3 does not); pydist
    # lists them only with a DoT listener, fed by the one backend answer and two zero samples
    dot_latency = {f"dnsdist_{n.replace('-', '_')}" for n in DOT_LATENCY_NAMES}
    assert {k for k in seen["pydist"][6] if "latency_dot" in k} == dot_latency
    assert not any("latency_dot" in k for k in seen["dnsdist"][6])
    assert seen["pydist"][6]["dnsdist_latency_dot_avg100"] > 0
    assert {s for s in seen["pydist"][0] if s[0] not in dot_latency} == seen["dnsdist"][0]
    assert seen["pydist"][1] == seen["dnsdist"][1]
    assert seen["pydist"][2] == seen["dnsdist"][2]
    assert seen["pydist"][3] == seen["dnsdist"][3] == 3
    # the cache hit is not a frontend response, the spoofed answer is (as over UDP and TCP)
    assert seen["pydist"][5] == seen["dnsdist"][5] == (3, 2)
    norm = {impl: [re.sub(r"frontend=[^,}]*", "frontend=X", k) for k in s[4]]
            for impl, s in seen.items()}
    assert norm["pydist"] == norm["dnsdist"]


def test_servfail_when_no_server_counts_as_dnsdist(start_proc: Starter) -> None:
    """Corpus 52: servers only in another pool, setServFailWhenNoServer(true)."""
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'setServFailWhenNoServer(true)\nwebserver("127.0.0.1:{portweb}")\nsetWebserverConfig({apiKey="key1"})\n')
    seen = {}
    for impl in available_impls():
        p = start_proc(impl, conf)
        assert query(p.addr(), "a.example") is not None
        assert query(p.addr(), "b.example", tcp=True) is not None
        stats = get_json(web_port(p), "/jsonstat?command=stats", KEY)
        info = get_json(web_port(p), "/api/v1/servers/localhost", KEY)
        seen[impl] = ([(f["type"], f["queries"], f["responses"]) for f in info["frontends"]],
                      stats["frontend-servfail"], stats["no-policy"], stats["queries"],
                      stats["latency-count"], stats["latency0-1"])
    assert seen["pydist"] == seen["dnsdist"]


def test_frontend_counters_for_self_answers(start_proc: Starter, responder_factory: Any) -> None:
    """Spoofed, truncated, dropped, refused and empty queries: every counter /metrics shows."""
    import socket as _socket
    backend = responder_factory()
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'newServer({address="{backend}"})\n'
            'addAction("spoof.example.", SpoofAction("192.0.2.7"))\n'
            'addAction("tc.example.", TCAction())\n'
            'addAction("drop.example.", DropAction())\n'
            'addAction("nx.example.", RCodeAction(DNSRCode.NXDOMAIN))\n'
            'webserver("127.0.0.1:{portweb}")\nsetWebserverConfig({apiKey="key1"})\n')
    names = ("spoof.example", "tc.example", "nx.example", "fwd.example")
    seen = {}
    for impl in available_impls():
        p = start_proc(impl, conf, {"backend": backend.address})
        for name in names:
            assert query(p.addr(), name) is not None, name
        assert query(p.addr(), "drop.example", timeout=0.5) is None
        assert query(p.addr(), "spoof.example", tcp=True) is not None
        with _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) as s:   # QDCOUNT=0
            s.settimeout(2)
            s.sendto(b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", p.addr())
            assert s.recv(512)[:2] == b"\x12\x34"

        def settled(p: DnsdistProcess = p) -> Any:
            st = get_json(web_port(p), "/jsonstat?command=stats", KEY)
            return st if st["queries"] == 7 else None
        stats: Any = poll_until(settled, timeout=5.0)
        info = get_json(web_port(p), "/api/v1/servers/localhost", KEY)
        keep = ("queries", "responses", "self-answered", "rule-drop", "rule-nxdomain",
                "rule-truncated", "empty-queries", "frontend-noerror", "frontend-nxdomain",
                "rdqueries", "latency-count")   # (which bucket the backend's sample hits varies)
        seen[impl] = ([(f["type"], f["queries"], f["responses"]) for f in info["frontends"]],
                      {k: stats[k] for k in keep})
    assert seen["pydist"][0] == seen["dnsdist"][0]
    assert seen["pydist"][1] == seen["dnsdist"][1]
