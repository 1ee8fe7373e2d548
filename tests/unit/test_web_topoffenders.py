"""Dyn-block top offenders (once a period, hits per second of each live block, top 20 per
reason) and their /metrics lines, as dnsdist 1.7.3 printed them after a minute of blocked
traffic: `..._nmg_top_offenders_hits_per_second{reason="blocked",netmask="127.0.0.1/32"} 75`."""
from __future__ import annotations

import ipaddress
import time

from prometheus_client.parser import text_string_to_metric_families

from pydist.dynblocks import DynBlocks
from pydist.registry import CHECK, Registry
from pydist.stats import Stats
from pydist.web.prometheus import render
from pydist.web.topoffenders import PERIOD, TOP, TopOffenders


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def blocks() -> DynBlocks:
    dyn = DynBlocks(Stats(), lambda line: None)
    now = time.time()
    dyn.insert_network(ipaddress.ip_network("127.0.0.1/32"), "blocked", 300, 0, now)
    dyn.insert_name((b"bad", b"example"), "bad.example.", "smt", 300, 0, now)
    return dyn


def test_nothing_before_the_first_period_then_rates() -> None:
    dyn, clock = blocks(), Clock()
    top = TopOffenders(dyn, clock)
    dyn.nets[ipaddress.ip_network("127.0.0.1/32")].blocks = 4500
    clock.now += PERIOD - 1
    top.tick()
    assert top.netmasks == [] and top.suffixes == []
    clock.now += 1
    top.tick()
    assert top.netmasks == [("blocked", "127.0.0.1/32", 75.0)]
    assert top.suffixes == [("smt", "bad.example.", 0.0)]
    dyn.nets[ipaddress.ip_network("127.0.0.1/32")].blocks = 4500 + 60
    clock.now += PERIOD
    top.tick()
    assert top.netmasks == [("blocked", "127.0.0.1/32", 1.0)], "only the last period counts"


def test_top_twenty_per_reason() -> None:
    dyn = DynBlocks(Stats(), lambda line: None)
    now = time.time()
    for i in range(30):
        net = ipaddress.ip_network(f"192.0.2.{i}/32")
        dyn.insert_network(net, "many", 300, 0, now, quiet=True)
        dyn.nets[net].blocks = i * 60
    top = TopOffenders(dyn, Clock())
    top.collect(now)
    assert len(top.netmasks) == TOP and top.netmasks[0] == ("many", "192.0.2.29/32", 29.0)


def test_metrics_lines() -> None:
    dyn, clock = blocks(), Clock()
    top = TopOffenders(dyn, clock)
    dyn.nets[ipaddress.ip_network("127.0.0.1/32")].blocks = 4500
    clock.now += PERIOD
    top.tick()
    text = render(Registry(CHECK), top)
    assert ('dnsdist_dynblocks_nmg_top_offenders_hits_per_second{reason="blocked",'
            'netmask="127.0.0.1/32"} 75\n') in text
    assert ('dnsdist_dynblocks_smt_top_offenders_hits_per_second{reason="smt",'
            'suffix="bad.example."} 0\n') in text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["dnsdist_dynblocks_nmg_top_offenders_hits_per_second"].type == "gauge"
