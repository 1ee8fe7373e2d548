"""HTTP helpers for web-server tests: one request per connection, as dnsdist serves them."""
from __future__ import annotations

import base64
import http.client
import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def request(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET",
         body: bytes | None = None, host: str = "127.0.0.1",
         timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = b"" if method == "HEAD" else resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def metric_samples(text: str) -> dict[str, float]:
    """`name{k=v,...}` -> value, over every family of a /metrics body."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            name = s.name if fam.type == "histogram" else fam.name  # no parser-added _total
            out[f"{name}{{{labels}}}"] = s.value
    return out


def metric_shapes(text: str) -> set[tuple[str, str, tuple[str, ...]]]:
    """(family, type, label names) of every sample: what dashboards depend on."""
    shapes = set()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            shapes.add((s.name if fam.type == "histogram" else fam.name, fam.type,
                        tuple(sorted(s.labels))))
    return shapes


def key_shape(value: Any) -> Any:
    """A JSON value reduced to its keys: dicts keep keys, lists their first element's shape."""
    if isinstance(value, dict):
        return {k: key_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value and isinstance(value[0], (dict, list)) else []
    return None


def get_json(port: int, path: str, headers: dict[str, str], host: str = "127.0.0.1") -> Any:
    status, _, body = request(port, path, headers, host=host)
    assert status == 200, (path, status, body[:200])
    return json.loads(body)
