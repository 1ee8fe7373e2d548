"""The web API's reload (pydist's own path): the API key and setAPIWritable(true) required;
the result as JSON; reload counters in /metrics only once a reload was attempted."""
from __future__ import annotations

import json

from tests.conftest import Starter
from tests.helpers.pydist_proc import poll_until
from tests.helpers.responder import Responder
from tests.helpers.web import metric_samples, request

CONF = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}"})
webserver("127.0.0.1:{portw}")
setWebserverConfig({apiKey="sekret", password="pw"})
"""
PATH = "/api/v1/servers/localhost/pydist/reload"
KEY = {"X-API-Key": "sekret"}


def _metrics(port: int) -> dict[str, float]:
    status, _, body = request(port, "/metrics", KEY)
    assert status == 200
    return metric_samples(body.decode())


def test_api_reload_needs_the_key_and_a_writable_api(start_proc: Starter,
                                                     responder: Responder) -> None:
    proc = start_proc("pydist", CONF, {"backend": responder.address})
    web = int(proc.values["portw"])  # type: ignore[arg-type]
    poll_until(lambda: request(web, "/metrics", KEY)[0] == 200)
    assert not any("pydist" in k for k in _metrics(web))     # as dnsdist until a reload
    assert request(web, PATH, method="POST")[0] == 401
    assert request(web, PATH, KEY, method="POST")[0] == 403   # not writable
    assert request(web, PATH, KEY)[0] == 404                  # no reload yet
    proc.conf.write_text(proc.conf_text + "setAPIWritable(true)\n")
    # the running config is not writable yet: the file's setAPIWritable arrives by SIGHUP
    import os
    import signal
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGHUP)
    proc.wait_for("Configuration reloaded")
    status, _, body = request(web, PATH, KEY, method="POST")
    assert status == 200, body
    doc = json.loads(body)
    assert doc["ok"] is True and doc["summary"].startswith("servers +0 -0 ~0 =1")
    status, _, body = request(web, PATH, KEY)
    assert status == 200 and json.loads(body)["summary"] == doc["summary"]
    proc.conf.write_text(proc.conf_text + "setAPIWritable(true)\nerror('broken')\n")
    status, _, body = request(web, PATH, KEY, method="POST")
    assert status == 422 and "broken" in json.loads(body)["error"]
    m = _metrics(web)
    assert m["dnsdist_pydist_reloads{}"] == 2 and m["dnsdist_pydist_reloads_failed{}"] == 1
    assert m["dnsdist_pydist_last_reload_time{}"] > 0
