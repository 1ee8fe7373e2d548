"""The reload's difference and carry-over, on two registries evaluated from Lua (no sockets):
what is matched by identity, what counts as changed, what state moves."""
from __future__ import annotations

from luaapi.runtime import LuaConfig
from pydist.registry import RELOAD, SERVE, Registry
from pydist.reload import carry
from pydist.reload.diff import plan

BASE = """
setLocal("127.0.0.1:5300")
addLocal("127.0.0.1:5302")
newServer({address="127.0.0.1:5301", name="a"})
newServer({address="127.0.0.1:5303", name="b", pool="other"})
pc = newPacketCache(100, {maxTTL=300})
getPool(""):setCache(pc)
addAction("one.test.", DropAction())
"""


def _registry(text: str, mode: str = RELOAD) -> Registry:
    reg = Registry(mode, log=lambda line: None)
    LuaConfig(reg).run_code(text, "chunk")
    return reg


def test_unchanged_config_keeps_everything() -> None:
    p = plan(_registry(BASE, SERVE), _registry(BASE))
    assert p.summary() == ("servers +0 -0 ~0 =2, rules +0 -0 =1, caches kept 1 resized 0 "
                           "new 0, listeners +0 -0 =2")


def test_what_changed_is_said_plainly() -> None:
    changed = (BASE.replace('addLocal("127.0.0.1:5302")', 'addLocal("127.0.0.1:5304")')
               .replace('name="b", pool="other"', 'name="b", pool="other", weight=5')
               .replace("newPacketCache(100,", "newPacketCache(200,")
               .replace("one.test.", "two.test.")
               + 'newServer({address="127.0.0.1:5305", name="c"})\n')
    p = plan(_registry(BASE, SERVE), _registry(changed))
    assert p.summary() == ("servers +1 -0 ~1 =1, rules +1 -1 =0, caches kept 1 resized 1 "
                           "new 0, listeners +1 -1 =1")
    assert p.details()["listeners_added"] == ["plain 127.0.0.1:5304"]
    assert p.details()["caches_resized"] == ["100 -> 200"]


def test_cache_with_other_settings_is_a_new_cache() -> None:
    p = plan(_registry(BASE, SERVE), _registry(BASE.replace("maxTTL=300", "maxTTL=60")))
    assert [c.old for c in p.caches] == [None]


def test_carry_keeps_running_objects_and_counters() -> None:
    old, new = _registry(BASE, SERVE), _registry(BASE + 'addAction("two.test.", DropAction())\n')
    running = old.servers[0]
    running.up_status, running.queries = True, 42
    old.rules["query"].rules[0].matches = 7
    old.pools[""].cache.hits = 9
    p = plan(old, new)
    carry.servers(p, new)
    carry.caches(p, new)
    carry.rules(p)
    carry.globals_(old, new)
    assert new.servers[0] is running and running in new.pools[""].servers
    assert new.pools[""].cache is old.pools[""].cache and new.pools[""].cache.hits == 9
    assert [r.matches for r in new.rules["query"].rules] == [7, 0]
    assert new.rules["query"].rules[0].uuid == old.rules["query"].rules[0].uuid
    assert new.stats is old.stats and new.dynblocks.stats is old.stats


def test_changed_server_takes_the_running_state() -> None:
    old = _registry(BASE, SERVE)
    new = _registry(BASE.replace('name="a"', 'name="a", order=3'))
    old.servers[0].up_status, old.servers[0].latency_usec = True, 1234.0
    p = plan(old, new)
    carry.servers(p, new)
    (o, n), = p.changed_servers
    assert n.up_status is True and n.latency_usec == 1234.0 and n is not o


def test_listener_cpus_table_is_a_value() -> None:
    """addLocal's `cpus` table is kept as a list of CPU numbers: evaluated twice it is the
    same listener (a Lua table's repr differs each evaluation: every reload replaced the
    workers), and the workers read it without Lua."""
    text = BASE.replace('addLocal("127.0.0.1:5302")',
                        'addLocal("127.0.0.1:5302", {reusePort=true, cpus={1, 0, 1}})')
    old, new = _registry(text, SERVE), _registry(text)
    assert new.frontends[1].options["cpus"] == [0, 1]
    assert plan(old, new).summary().endswith("listeners +0 -0 =2")
