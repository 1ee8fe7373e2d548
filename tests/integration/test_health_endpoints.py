"""/healthz and /readyz (pydist's own, for Kubernetes probes): authenticated like the dashboard
unless `pydist.setHealthEndpoints{public=true}`; readiness follows the servers, all down then
up again, while liveness stays 200."""
from __future__ import annotations

from typing import Any

from tests.conftest import ResponderFactory, Starter
from tests.helpers.pydist_proc import DnsdistProcess, poll_until
from tests.helpers.web import basic, request

CONFIG = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{b1}", checkInterval=1, maxCheckFailures=1, rise=1, checkTimeout=300})
newServer({address="{b2}", pool="other", checkInterval=1, maxCheckFailures=1, rise=1,
           checkTimeout=300})
webserver("127.0.0.1:{portweb}")
setWebserverConfig({password="secret", apiKey="key1"})
"""
PUBLIC = 'pydist.setHealthEndpoints({public=true})\n'


def get(p: DnsdistProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    status, _, body = request(int(p.values["portweb"]), path, headers)  # type: ignore[arg-type]
    return status, body.decode()


def test_probes_follow_the_servers_down_and_up(start_proc: Starter,
                                               responder_factory: ResponderFactory) -> None:
    r1, r2 = responder_factory(), responder_factory()
    p = start_proc("pydist", CONFIG + PUBLIC, {"b1": r1.address, "b2": r2.address})
    assert get(p, "/healthz") == (200, "ok\n")
    assert poll_until(lambda: get(p, "/readyz")[0] == 200)
    assert get(p, "/readyz")[1].startswith("ready: 1 listener(s) bound")
    r1.silent = r2.silent = True                      # every server down
    assert poll_until(lambda: get(p, "/readyz")[0] == 503, timeout=10)
    assert get(p, "/readyz") == (503, "not ready: no pool has a server up\n")
    assert get(p, "/healthz") == (200, "ok\n")       # alive all the same
    r2.silent = False                                 # one pool has a server up again
    assert poll_until(lambda: get(p, "/readyz")[0] == 200, timeout=10)
    assert get(p, "/readyz") == (200, 'ready: 1 listener(s) bound, servers up in pool(s) '
                                      '"other"\n')


def test_no_server_at_all_is_not_ready(start_proc: Starter) -> None:
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'webserver("127.0.0.1:{portweb}")\n' + PUBLIC)
    p = start_proc("pydist", conf, ready=r"Listening on")
    assert poll_until(lambda: get(p, "/healthz")[0] == 200)
    assert get(p, "/readyz") == (503, "not ready: no pool has a server up\n")


def test_probes_need_credentials_unless_public(start_proc: Starter,
                                               responder_factory: ResponderFactory) -> None:
    r1, r2 = responder_factory(), responder_factory()
    p = start_proc("pydist", CONFIG, {"b1": r1.address, "b2": r2.address})
    for path in ("/healthz", "/readyz"):
        assert get(p, path)[0] == 401
        assert get(p, path, basic("u", "wrong"))[0] == 401
        assert get(p, path, basic("u", "secret"))[0] == 200
        assert get(p, path, {"X-API-Key": "key1"})[0] == 200
    status, headers, _ = request(int(p.values["portweb"]), "/readyz", basic("u", "secret"),
                                 method="POST")
    assert status == 405


def test_settings_table_is_pydist_only(start_proc: Starter, tmp_path: Any) -> None:
    """dnsdist has no `pydist` table: a config meant for both must test for it first."""
    conf = ('setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n'
            'if pydist then pydist.setHealthEndpoints({public=true}) end\n')
    for impl in ("pydist", "dnsdist"):
        p = start_proc(impl, conf, ready=r"Listening on")
        assert p.alive()
        p.stop()
