"""The viewer page in a real browser: headless Chromium loads `/`, and hls.js plays the live
feed. The test reads the page through Chromium's DevTools protocol (a websocket on loopback)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import aiohttp
import pytest
import requests

from tests.conftest import free_port

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """JSON.stringify({t: document.querySelector('video').currentTime,
  w: document.querySelector('video').videoWidth, h: document.querySelector('video').videoHeight,
  status: document.getElementById('player-status').textContent,
  feeds: document.getElementById('feeds').textContent})"""


async def _evaluate(ws_url: str, expression: str) -> dict:
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_json({"id": 1, "method": "Runtime.evaluate", "params": {"expression": expression}})
        async for msg in ws:
            data = json.loads(msg.data)
            if data.get("id") == 1:
                return json.loads(data["result"]["result"]["value"])
    raise AssertionError("no answer from the page")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_viewer_page_plays_the_live_feed_in_chromium(live, tmp_path):
    live.wait_media("synth", 8)
    port = free_port()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path}",
         "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={port}", live.base + "/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        seen: dict = {}
        while time.monotonic() < deadline:
            try:
                pages = [t for t in requests.get(f"http://127.0.0.1:{port}/json", timeout=2).json() if t["type"] == "page"]
                if pages:
                    seen = asyncio.run(_evaluate(pages[0]["webSocketDebuggerUrl"], PROBE))
                    if seen["t"] > 4.0:
                        break
            except (requests.RequestException, aiohttp.ClientError, KeyError, ValueError):
                pass
            time.sleep(1)
        # Four seconds of live video played, at one of the ladder's sizes.
        assert seen.get("t", 0) > 4.0, seen
        assert (seen["w"], seen["h"]) in {(r.width, r.height) for r in live.config.ladder.rungs}, seen
        assert "playing" in seen["status"] and "s played" in seen["status"], seen
        # The feed table lists the failed feed with its reason, as /api/feeds does.
        assert "broken" in seen["feeds"] and "failed" in seen["feeds"], seen
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
