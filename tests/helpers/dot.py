"""DNS over TLS helpers for tests: certificate sets (from tools/tls_certs), DoT queries with
dnspython, raw TLS clients for bad-input tests, and a real-dnsdist DoT server config."""
from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from tests.helpers.pydist_proc import DnsdistProcess, run_cli
from tools.tls_certs import Issued, make_ca, make_server


@dataclass
class CertSet:
    """A CA and certificates signed by it (or not), written as PEM files in one directory."""
    dir: Path
    ca: Issued
    server: Issued

    @property
    def ca_path(self) -> str:
        return str(self.ca.cert_path)

    @property
    def cert(self) -> str:
        return str(self.server.cert_path)

    @property
    def key(self) -> str:
        return str(self.server.key_path)

    def issue(self, stem: str, names: tuple[str, ...] = ("dot.test",), kind: str = "rsa",
              expired: bool = False, self_signed: bool = False) -> Issued:
        """Another server certificate in the same directory: stem.pem / stem.key."""
        issued = make_server(None if self_signed else self.ca, names, kind=kind, expired=expired)
        return issued.write(self.dir / f"{stem}.pem", self.dir / f"{stem}.key")


def make_cert_set(where: Path, kind: str = "rsa") -> CertSet:
    where.mkdir(parents=True, exist_ok=True)
    ca = make_ca().write(where / "ca.pem", where / "ca.key")
    server = make_server(ca, kind=kind).write(where / "server.pem", where / "server.key")
    return CertSet(where, ca, server)


def client_context(ca_path: str, hostname_check: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_path)
    ctx.check_hostname = hostname_check
    return ctx


def dot_query(where: tuple[str, int], qname: str, ca_path: str, rdtype: str = "A",
              timeout: float = 3.0, ctx: ssl.SSLContext | None = None
              ) -> dns.message.Message | None:
    """One query with dnspython's DoT client, the certificate checked against dot.test."""
    q = dns.message.make_query(qname, rdtype)
    try:
        return dns.query.tls(q, where[0], port=where[1], timeout=timeout,
                             ssl_context=ctx or client_context(ca_path),
                             server_hostname="dot.test")
    except (dns.exception.Timeout, EOFError, ConnectionError, ssl.SSLError, OSError):
        return None


def peer_certificate(where: tuple[str, int], ctx: ssl.SSLContext) -> bytes:
    """The DER certificate the listener presents to a client with this context."""
    with socket.create_connection(where, timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="dot.test") as s:
            der = s.getpeercert(binary_form=True)
            assert der is not None
            return der


def dnsdist_dot_server(certs: CertSet, backend: str, host: str = "127.0.0.1",
                       port_name: str = "port") -> str:
    """A real dnsdist 1.7.3 config that terminates DoT on host:{port_name} towards backend."""
    addr = f"[{host}]" if ":" in host else host
    return (f'setSecurityPollSuffix("")\n'
            f'setLocal("{addr}:{{{port_name}u}}")\n'
            f'addTLSLocal("{addr}:{{{port_name}}}", "{certs.cert}", "{certs.key}")\n'
            f'newServer{{address="{backend}"}}\n')


def frontend_counters(proc: DnsdistProcess) -> dict[str, str]:
    """The DoT frontend's row of showTCPStats and of showTLSErrorCounters, by column title."""
    out = {}
    for cmd in ("showTCPStats()", "showTLSErrorCounters()"):
        text = run_cli(proc.impl, ["-C", str(proc.conf), "-e", cmd]).stdout
        lines = text.splitlines()
        head = next(ln for ln in lines if ln.startswith("#   Address"))
        titles = [t for t in re.split(r"\s{2,}", head.strip())][1:]
        row = next(ln for ln in lines if f":{proc.values['portdot']}" in ln)
        cells = re.split(r"\s+", row.strip())[2:]
        out.update(zip(titles[1:], cells, strict=True))
    return out


@pytest.fixture
def certs(tmp_path: Path) -> CertSet:
    """A fixture for modules that import it: a CA and a dot.test server pair in tmp_path."""
    return make_cert_set(tmp_path / "certs")
