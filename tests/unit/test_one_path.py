"""Issue 17's contracts: one query step that sends nothing and returns a verdict, one transport
enumeration, a registry that is observed (never reaching the engine), policy knobs per registry."""
from __future__ import annotations

import inspect
import pathlib
import re
from typing import Any

import dnslib

from luaapi.runtime import LuaConfig
from pydist.packet_path import PacketPath
from pydist.registry import FrontendDecl, Registry
from pydist.rings import Rings
from pydist.transport import Transport
from pydist.verdict import ANSWER, DROP, FORWARD

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLIENT = ("192.0.2.9", 4242)


def make(conf: str) -> tuple[PacketPath, Registry]:
    reg = Registry(log=lambda line: None)
    LuaConfig(reg).run_code(conf, "chunk")
    reg.rings = Rings(100)
    return PacketPath(reg, None), reg


def query(name: str) -> bytes:
    return bytes(dnslib.DNSRecord.question(name, "A").pack())


def test_steps_take_the_transport_value_and_nothing_that_sends() -> None:
    params = list(inspect.signature(PacketPath.query_step).parameters)
    assert params == ["self", "data", "addr", "local", "transport", "fe", "now", "origin"]
    assert list(inspect.signature(PacketPath.tcp_response_step).parameters) == [
        "self", "server", "data", "st"]
    # `backend_flags`: the backend layer already put the client's ID and flags back
    assert list(inspect.signature(PacketPath.udp_response_step).parameters) == [
        "self", "server", "data", "st", "backend_flags", "now"]
    for name in ("packet_path.py", "rule_path.py", "rules/chain.py"):
        text = (ROOT / "pydist" / name).read_text()
        assert not re.search(r"(hasattr|getattr)\(reply", text), name
        assert "sendto" not in text and "fe_sock" not in text, name


def test_spoof_delay_and_forward_are_verdicts() -> None:
    path, reg = make("""
newServer{address="127.0.0.1:9"}
addAction("spoofed.test.", SpoofAction("192.0.2.1"))
addAction("slow.test.", DelayAction(50))
addAction("gone.test.", DropAction())
""")
    fe = FrontendDecl("127.0.0.1", 53).udp_state
    reg.servers[0].up_status = True
    v = path.query_step(query("spoofed.test."), CLIENT, None, Transport.DO53_UDP, fe, 1.0)
    assert v.kind == ANSWER and dnslib.DNSRecord.parse(v.data).rr[0].rdata == dnslib.A("192.0.2.1")
    assert v.generated and v.delay_ms == 0
    assert path.query_step(query("gone.test."), CLIENT, None, Transport.DO53_UDP, fe, 1.0) is DROP
    v = path.query_step(query("slow.test."), CLIENT, None, Transport.DO53_UDP, fe, 1.0)
    assert v.kind == FORWARD and v.server is reg.servers[0]
    assert v.transport is Transport.DO53_UDP and v.sink is None
    assert v.delay_ms == 50        # DelayAction: applied by the UDP frontend to the answer
    tcp = FrontendDecl("127.0.0.1", 53, kind="tls").tcp_state
    v = path.query_step(query("other.test."), CLIENT, None, tcp.transport, tcp, 1.0)
    assert v.kind == FORWARD and v.transport is Transport.DOT


def test_one_transport_enumeration_names_each_consumer() -> None:
    assert [t.protocol for t in (Transport.DO53_UDP, Transport.DO53_TCP, Transport.DOT,
                                 Transport.DOH)] == ["Do53 UDP", "Do53 TCP", "DNS over TLS",
                                                     "DNS over HTTPS"]
    assert [t.ring_name for t in Transport] == ["DoUDP", "DoTCP", "DNSCryptUDP", "DNSCryptTCP",
                                                "DoT", "DoH"]
    assert [t.protobuf_code for t in (Transport.DO53_UDP, Transport.DO53_TCP, Transport.DOT,
                                      Transport.DOH)] == [1, 2, 3, 4]
    decl = FrontendDecl("127.0.0.1", 53, kind="doh")
    assert decl.tcp_state.transport is Transport.DOH
    for name in ("remotelog.py", "dnstap.py", "rings.py"):
        assert "PROTOCOLS" not in (ROOT / "pydist" / name).read_text(), name


class Recorder:
    """A stand-in runtime: what the registry tells its observers."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.events.append((name, args))


def test_the_registry_is_observed_and_never_reaches_the_engine() -> None:
    reg = Registry(log=lambda line: None)
    assert not hasattr(reg, "engine")
    lua = LuaConfig(reg)
    rec = Recorder()
    reg.observers.append(rec)
    lua.run_code("""
newServer{address="127.0.0.1:9", name="a"}
addAction(AllRule(), DropAction())
getServer(0):setQPS(10)
setQueryCount(true)
carbonServer("127.0.0.1:1")
""", "runtime")
    names = [e[0] for e in rec.events]
    assert ("server_added", (reg.servers[0],)) in rec.events
    assert "config_changed" in names and "carbon_declared" in names
    rec.events.clear()
    lua.run_code('rmServer(0)', "runtime")
    assert [e[0] for e in rec.events if e[0] == "server_removed"] == ["server_removed"]
    for path in (ROOT / "luaapi" / "bindings").glob("*.py"):
        text = path.read_text()
        assert "pydist.engine" not in text and ".engine" not in text, path.name
    for name in ("registry.py", "web/server.py"):
        text = (ROOT / "pydist" / name).read_text()
        assert ".engine" not in text and "import engine" not in text, name


def test_policy_knobs_live_in_each_registry() -> None:
    a, b = Registry(log=lambda line: None), Registry(log=lambda line: None)
    LuaConfig(a).run_code("setRoundRobinFailOnNoServer(true) setWHashedPertubation(7)", "chunk")
    LuaConfig(b)
    assert a.policy_settings.round_robin_fail_on_no_server
    assert not b.policy_settings.round_robin_fail_on_no_server
    assert a.policy_settings.hash_perturbation == 7 != b.policy_settings.hash_perturbation
    down = a.builtin_policies["roundrobin"]
    assert down.name == "roundrobin"
    assert down([], None) is None
