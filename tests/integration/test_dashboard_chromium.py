"""The built-in dashboard in a real headless Chromium: it loads with basic auth, its figures
move by themselves while a bounded loopback load runs, and a screenshot is kept in
tests/artifacts/dashboard.png."""
from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Starter
from tests.helpers.chromium import Chromium, chromium_binary
from tests.helpers.pydist_proc import DnsdistProcess, query

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CONFIG = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="{backend}", name="backend-one"})
getPool(""):setCache(newPacketCache(1000))
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
        query(p.addr(), f"n{i % 200}.example", timeout=0.5)
        time.sleep(LOAD_SECONDS / LOAD_QUERIES)


async def read_figures(browser: Chromium) -> dict[str, Any]:
    return await browser.evaluate(
        "({updates: Number(document.body.dataset.updates || 0),"
        " queries: document.getElementById('queries').textContent,"
        " qps: document.getElementById('qps').textContent,"
        " hitrate: document.getElementById('hitrate').textContent,"
        " servers: document.querySelectorAll('#servers tbody tr').length,"
        " state: (document.querySelector('#servers tbody td:nth-child(4)') || {}).textContent,"
        " status: document.getElementById('status').textContent})")


async def watch_dashboard(url: str, profile: Path, p: DnsdistProcess) -> tuple[list, bytes]:
    browser = Chromium(profile)
    stop = threading.Event()
    load = threading.Thread(target=run_load, args=(p, stop), daemon=True)
    try:
        await browser.start()
        await browser.send("Network.enable")
        auth = "Basic " + base64.b64encode(b"admin:dashpw").decode()
        await browser.send("Network.setExtraHTTPHeaders", headers={"Authorization": auth})
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
            if len(counts) >= 3 and seen[-1]["updates"] >= 3:
                break
            await asyncio.sleep(0.25)
        shot = await browser.send("Page.captureScreenshot", format="png")
        return seen, base64.b64decode(shot["data"])
    finally:
        stop.set()
        await browser.close()
        if load.is_alive():
            load.join(LOAD_SECONDS + 2)


def test_dashboard_shows_live_figures(start_proc: Starter, responder: Any, tmp_path: Path) -> None:
    p = start_proc("pydist", CONFIG, {"backend": responder.address})
    url = f"http://127.0.0.1:{p.values['portweb']}/"
    seen, png = asyncio.run(watch_dashboard(url, tmp_path / "profile", p))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard.png").write_bytes(png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    live = [f for f in seen if f["updates"] > 0]
    assert live, f"the dashboard never updated: {seen[-1:]}"
    assert not live[-1]["status"].startswith("error"), live[-1]
    counts = [int(f["queries"].replace(",", "")) for f in live]
    assert len(set(counts)) >= 3 and counts[-1] > counts[0], counts
    assert live[-1]["servers"] == 1 and live[-1]["state"] == "up"
    assert live[-1]["hitrate"].endswith("%")
