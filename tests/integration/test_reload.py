"""Hot reload seen from outside (pydist's own feature: dnsdist 1.7.3 dies of SIGHUP): state
kept across reloads, broken files refused and counted, listeners kept or moved."""
from __future__ import annotations

import threading

import dns.message
import dns.rcode

from tests.conftest import Starter
from tests.helpers.pydist_proc import free_port, poll_until, query, send_message
from tests.helpers.reload import (
    CONSOLE,
    console,
    dump_stats,
    listener_inodes,
    port_answers_tcp,
    reload_by_signal,
)
from tests.helpers.responder import Responder

HEAD = 'setSecurityPollSuffix("")\nsetLocal("127.0.0.1:{port}")\n' + CONSOLE


def _conf(body: str) -> str:
    return HEAD + body


def test_down_server_stays_down_after_reload(start_proc: Starter,
                                             responder_factory: object) -> None:
    """A server its health checks marked down is still down right after a reload: no query
    goes to it until a check says otherwise (a restart would start it 'down' too, but then
    check it before serving, a pause the reload does not take)."""
    up: Responder = responder_factory()  # type: ignore[operator]
    dead: Responder = responder_factory()  # type: ignore[operator]
    dead.silent = True
    body = ('newServer({address="{up}", name="up"})\n'
            'newServer({address="{dead}", name="dead", checkTimeout=300})\n'
            'setServerPolicy(roundrobin)\n')
    proc = start_proc("pydist", _conf(body), {"up": up.address, "dead": dead.address},
                      ready=r"Marking downstream .*up.* as 'up'")
    proc.wait_for(r"Marking downstream dead .* as 'down'")
    line = reload_by_signal(proc, proc.conf_text + 'addAction("x.test.", DropAction())\n')
    assert "servers +0 -0 ~0 =2" in line, line
    for i in range(20):
        assert query(proc.addr(), f"q{i}.example.") is not None
    assert dead.count(".example.") == 0
    assert up.count(".example.") == 20
    servers = console(proc, "showServers()")
    assert any(" dead " in ln and " down " in ln for ln in servers.splitlines()), servers


def test_dynamic_block_stays(start_proc: Starter, responder: Responder) -> None:
    """A dynamic block added on the console (with its expiry) outlives a reload."""
    proc = start_proc("pydist", _conf('newServer({address="{backend}"})\n'),
                      {"backend": responder.address})
    assert query(proc.addr(), "before.example.") is not None
    console(proc, "addDynBlocks({[newCA('127.0.0.1')]=1}, 'us', 60, DNSAction.Refused)")
    refused = query(proc.addr(), "blocked.example.")
    assert refused is not None and refused.rcode() == dns.rcode.REFUSED
    before = console(proc, "showDynBlocks()")
    reload_by_signal(proc, proc.conf_text + 'addAction("x.test.", DropAction())\n')
    after = query(proc.addr(), "after.example.")
    assert after is not None and after.rcode() == dns.rcode.REFUSED
    shown = console(proc, "showDynBlocks()")
    assert "127.0.0.1/32" in shown and shown.split()[:8] == before.split()[:8], (before, shown)
    assert dump_stats(proc)["dyn-blocked"] == 2


def _stream(where: tuple[str, int], stop: threading.Event, tcp: bool,
            sent: list[int], lost: list[str]) -> None:
    """One query at a time, each waiting for its answer (up to 2 s: the UDP timeout)."""
    i = 0
    while not stop.is_set():
        name = "cached.example." if i % 2 else f"u{i}.{'tcp' if tcp else 'udp'}.example."
        q = dns.message.make_query(name, "A")
        r = send_message(where, q, tcp=tcp, timeout=2.0)
        sent[0] += 1
        if r is None or r.rcode() != dns.rcode.NOERROR:
            lost.append(name)
        i += 1


def test_fifty_reloads_under_a_steady_stream(start_proc: Starter, responder: Responder) -> None:
    """UDP and TCP queries flow while 50 reloads happen, half changing a rule, five of them
    on a broken file: every query is answered, the broken ones are refused and counted."""
    base = _conf('newServer({address="{backend}"})\n'
                 'pc = newPacketCache(1000, {maxTTL=300})\ngetPool(""):setCache(pc)\n')
    proc = start_proc("pydist", base, {"backend": responder.address})
    stop = threading.Event()
    sent, lost = [0], []
    threads = [threading.Thread(target=_stream, args=(proc.addr(), stop, tcp, sent, lost))
               for tcp in (False, True)]
    for t in threads:
        t.start()
    try:
        failed = 0
        for n in range(50):
            if n % 10 == 9:
                text, failed = proc.conf_text + "addAction(\n", failed + 1     # syntax error
            elif n % 2:
                text = proc.conf_text + f'addAction("r{n}.test.", DropAction())\n'
            else:
                text = proc.conf_text
            line = reload_by_signal(proc, text)
            assert ("failed" in line) == (n % 10 == 9), line
            poll_until(lambda: sent[0] > 2 * n, timeout=10)   # queries flow between reloads
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    stats = dump_stats(proc)
    assert lost == []
    assert sent[0] >= 100
    assert stats["pydist-reloads"] == 45 and stats["pydist-reloads-failed"] == failed == 5
    # the last good config (n=48: no extra rule) is running: r47's rule is gone
    assert query(proc.addr(), "r47.test.") is not None


def test_listener_moved_closes_the_old_and_opens_the_new(start_proc: Starter,
                                                         responder: Responder) -> None:
    """addLocal on another port: the old port stops answering (UDP and TCP), the new one
    answers, the unchanged setLocal keeps its very sockets."""
    old_port, new_port = free_port(), free_port()
    body = 'newServer({address="{backend}"})\naddLocal("127.0.0.1:{extra}")\n'
    proc = start_proc("pydist", _conf(body), {"backend": responder.address, "extra": old_port})
    assert proc.proc is not None
    kept = listener_inodes(proc.proc.pid, proc.values["port"])  # type: ignore[arg-type]
    assert len(kept) == 2 and query(("127.0.0.1", old_port), "a.example.") is not None
    line = reload_by_signal(proc, proc.conf_text.replace(str(old_port), str(new_port)))
    assert "listeners +1 -1 =1" in line, line
    assert query(("127.0.0.1", new_port), "b.example.") is not None
    assert query(("127.0.0.1", new_port), "b.example.", tcp=True) is not None
    assert not port_answers_tcp(old_port)
    assert query(("127.0.0.1", old_port), "c.example.", timeout=0.5) is None
    assert listener_inodes(proc.proc.pid, proc.values["port"]) == kept  # type: ignore[arg-type]


def test_rule_only_reload_keeps_every_listener_socket(start_proc: Starter,
                                                      responder: Responder) -> None:
    """Same socket inodes on every listening port after a reload that changes rules only."""
    extra = free_port()
    body = 'newServer({address="{backend}"})\naddLocal("127.0.0.1:{extra}")\n'
    proc = start_proc("pydist", _conf(body), {"backend": responder.address, "extra": extra})
    assert proc.proc is not None
    ports = (int(proc.values["port"]), extra)  # type: ignore[arg-type]
    before = {p: listener_inodes(proc.proc.pid, p) for p in ports}
    reload_by_signal(proc, proc.conf_text + 'addAction("x.test.", DropAction())\n')
    assert query(proc.addr(), "x.test.", timeout=0.5) is None      # the rule is live
    assert {p: listener_inodes(proc.proc.pid, p) for p in ports} == before
    assert all(len(v) == 2 for v in before.values())


def test_port_in_use_refuses_the_reload(start_proc: Starter, responder: Responder) -> None:
    """A new listener on a port taken by someone else: refused, counted, nothing changes."""
    import socket
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    busy = taken.getsockname()[1]
    try:
        proc = start_proc("pydist", _conf('newServer({address="{backend}"})\n'),
                          {"backend": responder.address})
        text = proc.conf_text + f'addLocal("127.0.0.1:{busy}")\naddAction("a.test.", DropAction())\n'
        line = reload_by_signal(proc, text)
        assert "reload failed" in line and "binding socket" in line, line
        assert query(proc.addr(), "a.test.") is not None           # the rule did not arrive
        stats = dump_stats(proc)
        assert stats["pydist-reloads-failed"] == 1 and stats["pydist-reloads"] == 0
    finally:
        taken.close()


def test_console_reload_prints_the_summary_and_errors(start_proc: Starter,
                                                      responder: Responder) -> None:
    proc = start_proc("pydist", _conf('newServer({address="{backend}"})\n'),
                      {"backend": responder.address})
    assert console(proc, "pydist.lastReload()") == "No reload yet\n"
    out = console(proc, "pydist.reload()")
    assert out.startswith("Reloaded: servers +0 -0 ~0 =1"), out
    assert console(proc, "pydist.lastReload()").endswith(out)
    for broken in ('addLocal("300.1.2.3:53")\n', 'error("no")\n'):     # validation, Lua
        proc.conf.write_text(proc.conf_text + broken)
        out = console(proc, "pydist.reload()")
        assert out.startswith("Reload failed, the running configuration is kept"), out
    assert dump_stats(proc)["pydist-reloads-failed"] == 2


def test_watch_config_reloads_on_a_file_change(start_proc: Starter, responder: Responder,
                                               tmp_path: object) -> None:
    """pydist.watchConfig(true, 0): a change in an includeDirectory() file is picked up."""
    from pathlib import Path
    inc = Path(str(tmp_path)) / "conf.d"
    inc.mkdir()
    (inc / "rules.conf").write_text("")
    body = (f'newServer({{address="{{backend}}"}})\nincludeDirectory("{inc}")\n'
            'pydist.watchConfig(true, 0)\n')
    proc = start_proc("pydist", _conf(body), {"backend": responder.address})
    assert query(proc.addr(), "w.test.") is not None
    proc.wait_for(r"Watching 2 configuration file\(s\) for changes")
    (inc / "rules.conf").write_text('addAction("w.test.", DropAction())\n')
    proc.wait_for("Configuration file changed, reloading")
    proc.wait_for("Configuration reloaded", timeout=5)
    assert query(proc.addr(), "w.test.", timeout=0.5) is None


def test_server_swapped_and_cache_resized(start_proc: Starter, responder_factory: object) -> None:
    """A reload replacing the backend and growing the cache: the new backend is checked at
    once and takes the queries, the old one gets none, cached answers are still hits."""
    a: Responder = responder_factory()  # type: ignore[operator]
    b: Responder = responder_factory()  # type: ignore[operator]
    body = ('newServer({address="{a}", name="a"})\n'
            'pc = newPacketCache(100, {maxTTL=300})\ngetPool(""):setCache(pc)\n')
    proc = start_proc("pydist", _conf(body), {"a": a.address, "b": b.address})
    assert query(proc.addr(), "cached.example.") is not None
    text = proc.conf_text.replace(a.address, b.address).replace('"a"', '"b"') \
        .replace("newPacketCache(100", "newPacketCache(500")
    line = reload_by_signal(proc, text)
    assert "servers +1 -1 ~0 =0" in line and "caches kept 1 resized 1" in line, line
    proc.wait_for(r"Marking downstream b .* as 'up'")
    assert query(proc.addr(), "fresh.example.") is not None
    assert query(proc.addr(), "cached.example.") is not None
    assert a.count("fresh.example.") == 0 and b.count("fresh.example.") == 1
    assert a.count("cached.example.") == 1 and b.count("cached.example.") == 0
    assert "500" in console(proc, "getPool(''):getCache():toString()")


def test_systemd_unit_reloads_by_sighup() -> None:
    """`systemctl reload pydist` sends the SIGHUP that reloads (contrib/systemd)."""
    from tests.integration.test_systemd import service
    assert service()["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_acl_change_applies_to_the_next_query(start_proc: Starter, responder: Responder) -> None:
    proc = start_proc("pydist", _conf('newServer({address="{backend}"})\n'),
                      {"backend": responder.address})
    assert query(proc.addr(), "a.example.") is not None
    reload_by_signal(proc, proc.conf_text + 'setACL({"192.0.2.0/24"})\n')
    assert query(proc.addr(), "b.example.", timeout=0.5) is None
    assert query(proc.addr(), "b.example.", tcp=True, timeout=0.5) is None
    assert dump_stats(proc)["acl-drops"] >= 2
