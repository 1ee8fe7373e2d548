"""The built-in dashboard in a real headless Chromium, opened as http://user:password@host/
(how people often open it; fetch() refuses URLs with credentials, so the page must not use
it): its figures move by themselves while a bounded loopback load runs, both live graphs
draw, and the rule tables' match counts change as queries arrive. A screenshot is kept in
tests/artifacts/dashboard.png."""
from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import Starter
from tests.helpers.chromium import Chromium
from tests.helpers.pydist_proc import DnsdistProcess, query

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CONFIG = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}", name="backend-one"})
newServer({address="{backend}", name="backend-two", pool="second"})
getPool(""):setCache(newPacketCache(1000))
addAction(SuffixMatchNodeRule(newSuffixMatchNode()), DropAction(), {name="never"})
addAction(RegexRule("^n[0-9]*7[.]"), NoneAction(), {name="sevens"})
addAction(AllRule(), NoneAction(), {name="every-query"})
addResponseAction(AllRule(), AllowResponseAction(), {name="every-answer"})
addCacheHitResponseAction(AllRule(), AllowResponseAction(), {name="every-hit"})
addDynBlockSMT({"blocked.example."}, "dashboard test block", 3600)
webserver("127.0.0.1:{portweb}")
setWebserverConfig({password="dashpw"})
"""
LOAD_QUERIES = 1500
LOAD_SECONDS = 6.0


def run_load(p: DnsdistProcess, stop: threading.Event) -> None:
    """At most LOAD_QUERIES queries over LOAD_SECONDS, half of them cache hits."""
    deadline = time.monotonic() + LOAD_SECONDS
    for i in range(LOAD_QUERIES):
        if stop.is_set() or time.monotonic() > deadline:
            return
        name = "x.blocked.example" if i % 50 == 0 else f"n{i % 20}.example"
        query(p.addr(), name, timeout=0.5)
        time.sleep(LOAD_SECONDS / LOAD_QUERIES)


async def read_figures(browser: Chromium) -> dict[str, Any]:
    return await browser.evaluate(
        "({updates: Number(document.body.dataset.updates || 0),"
        " queries: document.getElementById('queries').textContent,"
        " qps: document.getElementById('qps').textContent,"
        " hitrate: document.getElementById('hitrate').textContent,"
        " servers: document.querySelectorAll('#servers tbody tr').length,"
        " state: (document.querySelector('#servers tbody td:nth-child(4)') || {}).textContent,"
        " rules: [...document.querySelectorAll('#rules tbody tr')].map("
        "   (tr) => [...tr.children].map((td) => td.textContent)),"
        " responseRules: [...document.querySelectorAll('#response-rules tbody tr')].map("
        "   (tr) => [...tr.children].map((td) => td.textContent)),"
        " dynblocks: [...document.querySelectorAll('#dynblocks tbody tr')].map("
        "   (tr) => [...tr.children].map((td) => td.textContent)),"
        " pools: document.querySelectorAll('#pools tbody tr').length,"
        " graphs: [...document.querySelectorAll('canvas.graph')].map("
        "   (c) => Number(c.dataset.points || 0)),"
        " url: location.href,"
        " status: document.getElementById('status').textContent})")


async def watch_dashboard(url: str, profile: Path, p: DnsdistProcess) -> tuple[list, bytes]:
    browser = Chromium(profile)
    stop = threading.Event()
    load = threading.Thread(target=run_load, args=(p, stop), daemon=True)
    try:
        await browser.start()
        await browser.send("Page.enable")
        await browser.send("Page.navigate", url=url)
        seen: list[dict[str, Any]] = []
        load.start()
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            figures = await read_figures(browser)
            if figures and (not seen or figures != seen[-1]):
                seen.append(figures)
            counts = {f["queries"] for f in seen if f["updates"] > 0}
            matches = {f["rules"][SEVENS][2] for f in seen if len(f["rules"]) == 3}
            if len(counts) >= 3 and len(matches) >= 3 and seen[-1]["updates"] >= 4:
                break
            await asyncio.sleep(0.25)
        size = (await browser.send("Page.getLayoutMetrics"))["cssContentSize"]
        shot = await browser.send("Page.captureScreenshot", format="png",
                                  captureBeyondViewport=True,
                                  clip={"x": 0, "y": 0, "width": size["width"],
                                        "height": size["height"], "scale": 1})
        return seen, base64.b64decode(shot["data"])
    finally:
        stop.set()
        await browser.close()
        if load.is_alive():
            load.join(LOAD_SECONDS + 2)


def _count(cell: str) -> int:
    return int(cell.replace(",", ""))


# rows of the rules table: [#, name or uuid, matches, rule, action], in chain order
NEVER, SEVENS, EVERY = 0, 1, 2


def test_dashboard_shows_live_figures(start_proc: Starter, responder: Any, tmp_path: Path) -> None:
    p = start_proc("pydist", CONFIG, {"backend": responder.address})
    url = f"http://admin:dashpw@127.0.0.1:{p.values['portweb']}/"
    seen, png = asyncio.run(watch_dashboard(url, tmp_path / "profile", p))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard.png").write_bytes(png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    live = [f for f in seen if f["updates"] > 0]
    assert live, f"the dashboard never updated: {seen[-1:]}"
    assert not live[-1]["status"].startswith("error"), live[-1]
    counts = [int(f["queries"].replace(",", "")) for f in live]
    assert len(set(counts)) >= 3 and counts[-1] > counts[0], counts
    last = live[-1]
    assert last["servers"] == 2 and last["state"] == "up" and last["pools"] == 2
    assert last["hitrate"].endswith("%")
    assert len(last["graphs"]) == 3 and min(last["graphs"][:2]) >= 3, last["graphs"]
    # the rules table, in order, with counts that move as queries arrive
    assert [r[3] for r in last["rules"]][1:] == ["Regex: ^n[0-9]*7[.]", "All"], last["rules"]
    sevens = [_count(f["rules"][SEVENS][2]) for f in live]
    assert len(set(sevens)) >= 3 and sevens[-1] > sevens[0], sevens
    assert _count(last["rules"][NEVER][2]) == 0
    assert _count(last["rules"][EVERY][2]) > sevens[-1]
    # response rules: [chain, #, name, matches, rule, action]
    by_name = {r[2]: r for r in last["responseRules"]}
    assert by_name["every-answer"][0] == "response" and _count(by_name["every-answer"][3]) > 0
    assert by_name["every-hit"][0] == "cache hit" and _count(by_name["every-hit"][3]) > 0
    ((what, reason, seconds, blocks, action),) = last["dynblocks"]
    assert (what, reason, action) == ("blocked.example.", "dashboard test block", "Drop")
    assert int(blocks) > 0 and 0 < int(seconds) <= 3600
