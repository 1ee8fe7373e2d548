"""DoH upstreams for the outgoing-DoH tests: pydist's loopback DoH responder with a test CA, a
handler that answers (or misbehaves on) everything but the health checks, and the config
line of a DoH server pointing at it."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydist.compare.dohresponder import DoHReply, DoHRequest, DoHResponder
from pydist.compare.responder import build_answer
from tests.helpers.dot import CertSet
from tests.helpers.pydist_proc import DnsdistProcess, run_cli
from tests.helpers.web import metric_samples, request

HEALTH_QNAME = b"\x01a\x0croot-servers\x03net\x00"
KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="


def is_health_check(req: DoHRequest) -> bool:
    return HEALTH_QNAME in req.body.lower()


def answering(action: str = "answer", status: int = 200, content_type: str | None = None,
              body: bytes | None = None, checks_too: bool = False) -> Callable[[DoHRequest], DoHReply]:
    """The stand-in's answer to every query (health checks answered well unless checks_too):
    `action` and `status` as DoHReply takes them; `body` replaces the DNS answer."""
    def handle(req: DoHRequest) -> DoHReply:
        good = DoHReply(body=build_answer(req.body, 0) or b"")
        if is_health_check(req) and not checks_too:
            return good
        reply = DoHReply(status=status, body=good.body if body is None else body, action=action)
        if content_type is not None:
            reply.content_type = content_type
        return reply
    return handle


@contextmanager
def doh_upstream(certs: CertSet, handler: Callable[[DoHRequest], DoHReply] | None = None
                 ) -> Iterator[DoHResponder]:
    with DoHResponder(handler or answering(), certs.cert, certs.key) as responder:
        yield responder


def doh_server(responder: DoHResponder, certs: CertSet, extra: str = "", name: str = "doh") -> str:
    return (f'newServer{{address="{responder.address()}", tls="openssl", subjectName="dot.test", '
            f'caStore="{certs.ca_path}", dohPath="/dns-query", name="{name}"{extra}}}\n')


def head(extra: str = "") -> str:
    return (f'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{{port}}")\n'
            f'controlSocket("127.0.0.1:{{portctl}}")\nsetKey("{KEY}")\n'
            f'webserver("127.0.0.1:{{portweb}}")\n'
            f'setWebserverConfig({{apiKey="k", acl="127.0.0.0/8"}})\n{extra}')


def console(proc: DnsdistProcess, cmd: str) -> str:
    res = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd])
    return res.stdout


def server_metrics(proc: DnsdistProcess, name: str = "doh") -> dict[str, float]:
    """The server's /metrics samples by short name (queries, tcpdiedreadingresponse, ...)."""
    status, _, body = request(int(proc.values["portweb"]), "/metrics", {"X-API-Key": "k"})
    assert status == 200
    out = {}
    for key, value in metric_samples(body.decode()).items():
        m = re.match(r"dnsdist_server_(\w+)\{address=[^,]*,server=" + name + r"\}$", key)
        if m:
            out[m.group(1)] = value
    return out


def global_stats(proc: DnsdistProcess) -> dict[str, str]:
    """dumpStats() as name -> text value."""
    cells = re.findall(r"(\S+)\s*\t\s*(\S+)", console(proc, "dumpStats()"))
    return dict(cells)


def server_row(proc: DnsdistProcess) -> list[str]:
    """showServers()'s rows with the rates and latency masked (they depend on timing)."""
    rows = []
    for line in console(proc, "showServers()").splitlines():
        cells = line.split()
        if cells and cells[0].isdigit():
            cells[4] = cells[11] = "<n>"       # Qps, Lat
            cells[2] = "<addr>"
        elif cells and cells[0] == "All":
            cells[1] = "<n>"
        rows.append(" ".join(cells))
    return rows
