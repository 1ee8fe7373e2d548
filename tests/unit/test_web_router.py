"""The web application without sockets (facts §7): auth by path, CORS, security and custom
headers, methods, routes, /metrics text and JSON keys, allow-from PUT, registerWebHandler,
showWebserverConfig; the registry is filled by a config run in check-config mode."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from luaapi.runtime import LuaConfig
from pydist.registry import CHECK, Registry
from pydist.web.credentials import hash_password
from pydist.web.router import Request, Response, Router

BASE = """
newServer({address="127.0.0.1:5301", name="back.one", pool={"", "p2"}})
newServer({address="127.0.0.1:5302"})
getPool(""):setCache(newPacketCache(100))
addAction("blocked.example.", RCodeAction(DNSRCode.REFUSED), {name="blk"})
"""
NETDATA_KEYS = ("queries", "cache-hits", "cache-misses", "latency0-1", "latency1-10",
                "latency10-50", "latency50-100", "latency100-1000", "latency-slow",
                "latency-avg100", "latency-avg1000", "latency-avg10000", "latency-avg1000000",
                "acl-drops", "rule-drop", "rule-nxdomain", "rule-refused", "self-answered",
                "downstream-timeouts", "downstream-send-errors", "trunc-failures", "no-policy",
                "noncompliant-queries", "noncompliant-responses", "servfail-responses",
                "responses", "rdqueries", "empty-queries", "dyn-blocked", "real-memory-usage",
                "cpu-sys-msec", "cpu-user-msec", "fd-usage", "uptime")


def make(web_lua: str = 'setWebserverConfig({password="secret", apiKey="key1"})',
         extra: str = "") -> tuple[Router, list[str], LuaConfig]:
    logs: list[str] = []
    cfg = LuaConfig(Registry(CHECK, log=logs.append))
    cfg.run_code(BASE + web_lua + "\n" + extra, "chunk")
    reg = cfg.registry
    return Router(reg, reg.web, logs.append), logs, cfg


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def get(router: Router, path: str, method: str = "GET", body: bytes = b"",
        **headers: str) -> Response:
    hdrs = {k.lower().replace("_", "-"): v for k, v in headers.items()}
    return router.handle(Request(method, path, hdrs, body, "127.0.0.1:4000"))


def hdict(resp: Response) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers}


KEY = {"x_api_key": "key1"}
RIGHT = {"authorization": basic("u", "secret")}
WRONG = {"authorization": basic("u", "nope")}


@pytest.mark.parametrize("path,none,wrong,right,key", [
    ("/metrics", 401, 401, 200, 200),
    ("/jsonstat?command=stats", 401, 401, 200, 200),
    ("/api/v1/servers/localhost", 401, 401, 200, 200),
    ("/api/v1/servers/localhost/statistics", 401, 401, 401, 200),
    ("/api/v1/servers/localhost/config", 401, 401, 401, 200),
    ("/", 401, 401, 200, 401),
    ("/nothing", 401, 401, 404, 401),
    ("/api/v1/nothing", 401, 401, 401, 404),
])
def test_auth_matrix(path: str, none: int, wrong: int, right: int, key: int) -> None:
    r, _, _ = make()
    assert get(r, path).status == none
    assert get(r, path, **WRONG).status == wrong
    assert get(r, path, **RIGHT).status == right
    assert get(r, path, **KEY).status == key
    assert get(r, path, x_api_key="wrong").status == 401


def test_unauthorized_answer_and_log() -> None:
    r, logs, _ = make()
    resp = get(r, "/metrics")
    h = hdict(resp)
    assert resp.body == b"<h1>Unauthorized</h1>"
    assert h["www-authenticate"] == 'basic realm="PowerDNS"'
    assert logs[-1] == 'HTTP Request "/metrics" from 127.0.0.1:4000: Web Authentication failed'
    names = [k for k, _ in resp.headers]
    assert "X-Xss-Protection" in names and "Www-Authenticate" in names, names


@pytest.mark.parametrize("header", [basic("", "secret"), basic("u", "secret:x"), "Basic !!!",
                                    "Bearer secret", basic("u", "")])
def test_malformed_basic_auth_fails(header: str) -> None:
    r, _, _ = make()
    assert get(r, "/", authorization=header).status == 401


def test_hashed_credentials() -> None:
    r, logs, _ = make(f'setWebserverConfig({{password="{hash_password("pw1")}", '
                      f'apiKey="{hash_password("k1")}"}})')
    assert not any("plain-text" in line for line in logs)
    assert get(r, "/", authorization=basic("admin", "pw1")).status == 200
    assert get(r, "/", authorization=basic("admin", "pw2")).status == 401
    assert get(r, "/metrics", x_api_key="k1").status == 200
    assert get(r, "/metrics", x_api_key="k2").status == 401


def test_no_password_accepts_any_wellformed_basic_and_stats_can_be_open() -> None:
    r, _, _ = make('setWebserverConfig({statsRequireAuthentication=false})')
    assert get(r, "/", authorization=basic("a", "b")).status == 200
    assert get(r, "/").status == 401
    assert get(r, "/metrics").status == 200
    assert get(r, "/api/v1/servers/localhost/statistics").status == 401, "no API key set"


def test_security_cors_and_custom_headers() -> None:
    r, _, _ = make('setWebserverConfig({apiKey="key1", customHeaders={["X-Frame-Options"]="",'
                   ' ["X-Foo"]="bar"}})')
    h = hdict(get(r, "/metrics", origin="http://o.example", **KEY))
    assert h["access-control-allow-origin"] == "http://o.example"
    assert h["access-control-allow-credentials"] == "true"
    assert h["x-foo"] == "bar" and "x-frame-options" not in h
    assert h["x-content-type-options"] == "nosniff" and h["connection"] == "close"
    assert h["content-security-policy"] == "default-src 'self'; style-src 'self' 'unsafe-inline'"
    h = hdict(get(r, "/api/v1/servers/localhost/statistics", origin="http://o", **KEY))
    assert "access-control-allow-credentials" not in h and h["access-control-allow-origin"]
    pre = get(r, "/api/v1/servers/localhost/config/allow-from", "OPTIONS", origin="http://o")
    h = hdict(pre)
    assert pre.status == 200 and h["access-control-allow-methods"] == "GET"
    assert h["access-control-allow-headers"] == "Authorization, X-API-Key"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
def test_methods(method: str) -> None:
    r, _, _ = make()
    assert get(r, "/metrics", method, **KEY).status == 405
    assert get(r, "/api/v1/servers/localhost/config/allow-from", method, **KEY).status == 405
    assert get(r, "/metrics", "OPTIONS").status == 200


def test_metrics_text_parses_and_has_the_families() -> None:
    r, _, cfg = make()
    cfg.registry.stats.queries = 7
    cfg.registry.stats.latency_sample(1500.0)
    resp = get(r, "/metrics", **KEY)
    assert hdict(resp)["content-type"] == "text/plain"
    text = resp.body.decode()
    fams: dict = {}
    for f in text_string_to_metric_families(text):
        # dnsdist prints all per-server HELP/TYPE lines first, so the parser splits families
        if f.name in fams:
            fams[f.name].samples.extend(f.samples)
        else:
            fams[f.name] = f
    assert fams["dnsdist_queries"].type == "counter"
    assert fams["dnsdist_queries"].samples[0].value == 7
    assert fams["dnsdist_latency_avg100"].type == "gauge"
    assert fams["dnsdist_latency"].type == "histogram"
    buckets = {s.labels.get("le"): s.value for s in fams["dnsdist_latency"].samples
               if s.name.endswith("_bucket")}
    assert buckets["1"] == 0 and buckets["10"] == 1 and buckets["+Inf"] == 1
    servers = {s.labels["server"] for s in fams["dnsdist_server_queries"].samples}
    assert servers == {"back_one", "127_0_0_1:5302"}
    assert {s.labels["pool"] for s in fams["dnsdist_pool_servers"].samples} == {"_default_", "p2"}
    assert [s.labels["id"] for s in fams["dnsdist_rule_hits"].samples] == ["blk"]
    assert "dnsdist_special_memory_usage" not in fams and "dnsdist_latency_sum" not in text.split(
        "# TYPE dnsdist_latency histogram")[0]
    assert "# TYPE dnsdist_server_tlsersumptions counter" in text
    assert text.endswith('dnsdist_info{version="1.7.3"} 1\n')
    assert "dnsdist_server_latency{" not in text, "servers are not up: no latency line"


def test_jsonstat_keys_netdata_reads() -> None:
    r, _, _ = make()
    stats = json.loads(get(r, "/jsonstat?command=stats", **KEY).body)
    for k in NETDATA_KEYS:
        assert isinstance(stats[k], (int, float)), k
    assert stats["server-policy"] == "leastOutstanding" and stats["packetcache-hits"] == 0
    assert "special-memory-usage" not in stats
    assert json.loads(get(r, "/jsonstat?command=dynblocklist", **KEY).body) == {}
    assert get(r, "/jsonstat", **KEY).status == 404
    assert get(r, "/jsonstat?command=nope", **KEY).status == 404


def test_localhost_json_keys() -> None:
    r, _, _ = make()
    d = json.loads(get(r, "/api/v1/servers/localhost", **KEY).body)
    assert set(d) == {"acl", "cache-hit-response-rules", "daemon_type", "dohFrontends",
                      "frontends", "local", "pools", "response-rules", "rules",
                      "self-answered-response-rules", "servers", "version"}
    s0, s1 = d["servers"]
    assert s0["name"] == "back.one" and s0["pools"] == ["", "p2"] and s1["pools"] == []
    assert s0["state"] == "down" and s0["latency"] == 0
    assert d["rules"][0]["action"] == "set rcode 5" and d["rules"][0]["action-stats"] == {"": 0}
    assert [p["name"] for p in d["pools"]] == ["", "p2"] and d["pools"][0]["cacheSize"] == 100
    pool = json.loads(get(r, "/api/v1/servers/localhost/pool?name=p2", **KEY).body)
    assert set(pool) == {"stats", "servers"} and pool["stats"]["serversCount"] == 1
    assert get(r, "/api/v1/servers/localhost/pool", **KEY).status == 400
    assert get(r, "/api/v1/servers/localhost/pool?name=zz", **KEY).status == 404
    stats = json.loads(get(r, "/api/v1/servers/localhost/statistics", **KEY).body)
    assert stats[0] == {"type": "StatisticItem", "name": "responses", "value": 0}
    conf = json.loads(get(r, "/api/v1/servers/localhost/config", **KEY).body)
    assert [c["name"] for c in conf][:3] == ["acl", "allow-empty-response", "control-socket"]


def test_allow_from_put_persists(tmp_path: Path) -> None:
    r, _, cfg = make(f'setWebserverConfig({{apiKey="key1"}})\nsetAPIWritable(true, "{tmp_path}")')
    body = json.dumps({"value": ["192.0.2.0/24", "127.0.0.1"]}).encode()
    resp = get(r, "/api/v1/servers/localhost/config/allow-from", "PUT", body, **KEY)
    assert resp.status == 200
    assert json.loads(resp.body)["value"] == ["127.0.0.1/32", "192.0.2.0/24"]
    assert cfg.registry.acl.to_strings() == ["127.0.0.1/32", "192.0.2.0/24"]
    assert (tmp_path / "acl.conf").read_text() == ('-- Generated by the REST API, DO NOT EDIT\n'
                                                   'setACL({"127.0.0.1/32", "192.0.2.0/24"})\n')
    bad = get(r, "/api/v1/servers/localhost/config/allow-from", "PUT", b'{"value": ["x"]}', **KEY)
    assert bad.status == 400 and cfg.registry.acl.to_strings() == ["127.0.0.1/32", "192.0.2.0/24"]
    pre = hdict(get(r, "/api/v1/servers/localhost/config/allow-from", "OPTIONS", origin="o"))
    assert pre["access-control-allow-methods"] == "GET, PUT"


def test_register_web_handler() -> None:
    r, _, _ = make(extra="""
      registerWebHandler("/custom", function(req, resp)
        resp.status = 202
        resp.headers = {["X-Got"] = req.method .. " " .. (req.getvars["a"] or "-")}
        resp.body = "hello " .. req.path .. " " .. req.headers["x-thing"]
      end)
      registerWebHandler("/broken", function(req, resp) error("boom") end)""")
    resp = get(r, "/custom?a=1", x_thing="t", **RIGHT)
    assert resp.status == 202 and resp.body == b"hello /custom t"
    assert hdict(resp) == {"x-got": "GET 1"}, "as 1.7.3: only the handler's headers"
    assert get(r, "/custom").status == 401
    assert get(r, "/broken", **RIGHT).status == 500


def test_dashboard_assets() -> None:
    r, _, _ = make()
    page = get(r, "/", **RIGHT)
    assert hdict(page)["content-type"] == "text/html; charset=utf-8"
    assert b'src="dashboard.js"' in page.body and b"<script>" not in page.body
    js = get(r, "/dashboard.js", **RIGHT)
    assert js.status == 200 and b"api/v1/servers/localhost" in js.body
    assert get(r, "/style.css", **RIGHT).status == 200


def test_show_webserver_config() -> None:
    _, _, cfg = make('setWebserverConfig({apiKey="k", customHeaders={["X-Foo"]="bar"}, '
                     'statsRequireAuthentication=false, maxConcurrentConnections=10})\n'
                     'setAPIWritable(true, "/var/lib/x")')
    assert cfg.registry.web.show() == (
        "Current web server configuration:\nACL: 127.0.0.1/32, ::1/128\nCustom headers: \n"
        " - X-Foo: bar\nStatistics require authentication: no\nPassword: unset\n"
        "API key: set\nAPI writable: yes\nAPI configuration directory: /var/lib/x\n"
        "Maximum concurrent connections: 10\n\n")


def test_hashed_checks_are_handed_out_and_their_verdicts_used() -> None:
    r, _, cfg = make(f'setWebserverConfig({{password="{hash_password("pw1")}", apiKey="plain"}})')
    req = Request("GET", "/", {"authorization": basic("u", "pw1"), "x-api-key": "plain"})
    checks = r.slow_checks(req)
    assert [(c is cfg.registry.web.password, s) for c, s in checks] == [(True, "pw1")]
    req.verdicts = {(id(c), s): False for c, s in checks}   # the worker said no
    assert r.handle(req).status == 401
    req.verdicts = {(id(c), s): c.compute(s) for c, s in checks}
    assert r.handle(req).status == 200
    assert r.slow_checks(req) == [], "a success is remembered: no more scrypt for it"


@pytest.mark.parametrize("path,headers,logged", [
    ("/metrics", {}, True), ("/metrics", WRONG, False), ("/metrics", {"x_api_key": "no"}, False),
    ("/api/v1/servers/localhost/config", RIGHT, True), ("/", KEY, True),
    ("/", dict(WRONG, **KEY), False), ("/metrics", {"authorization": basic("u", "")}, True),
    ("/metrics", {"authorization": "Bearer x"}, True), ("/nothing", {}, False),
])
def test_authentication_failures_logged_as_dnsdist(path: str, headers: dict, logged: bool) -> None:
    r, logs, _ = make()
    before = len(logs)
    assert get(r, path, **headers).status == 401
    assert (len(logs) > before) == logged
