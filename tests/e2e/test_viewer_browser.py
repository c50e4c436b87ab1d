"""The viewer page in a real browser: Playwright drives Debian's headless Chromium to the signed
viewer URL `orbitcast token` prints, where hls.js plays the live feed in low-latency mode. The
test listens to the player's own events: it plays, it loads LL-HLS parts (not only whole
segments), it blocks on playlist reloads, and every live request carried the token."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

import pytest

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium tries to reach Google on this closed network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
# Counts what hls.js (the page's `hls`) loads, through its own events.
WATCH = """() => {
  window.seen = {parts: 0, fragments: 0, blocking: 0};
  const attach = () => {
    if (!window.hls) return setTimeout(attach, 100);
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => { d.part ? seen.parts++ : seen.fragments++; });
    hls.on(Hls.Events.LEVEL_LOADING, (_, d) => { if (d.deliveryDirectives && d.deliveryDirectives.msn !== undefined) seen.blocking++; });
  };
  attach();
}"""
PROBE = """() => ({t: document.querySelector('video').currentTime,
  w: document.querySelector('video').videoWidth, h: document.querySelector('video').videoHeight,
  status: document.getElementById('player-status').textContent,
  feeds: document.getElementById('feeds').textContent,
  lowLatency: window.hls ? hls.config.lowLatencyMode : null,
  partHoldBack: window.hls && hls.latestLevelDetails ? hls.latestLevelDetails.partHoldBack : null,
  seen: window.seen,
  live: performance.getEntriesByType('resource').map(e => new URL(e.name).pathname).filter(p => p.startsWith('/live/'))})"""


def played(status: str) -> float:
    """Seconds played, as the page's status line says ('... 4.2 s played ...')."""
    head = status.split(" s played")[0] if " s played" in status else ""
    try:
        return float(head.rsplit(" ", 1)[-1])
    except ValueError:
        return 0.0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_a_signed_viewer_url_plays_the_live_feed_in_low_latency_mode(live, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    live.wait_media("synth", 4)
    config = tmp_path / "orbitcast.yaml"
    config.write_text(yaml.safe_dump(live.config.model_dump(mode="json")))
    token = subprocess.run([str(Path(sys.executable).parent / "orbitcast"), "token", "synth", "--config", str(config),
                            "--ttl", "600", "--base", live.base], capture_output=True, text=True, timeout=60)
    assert token.returncode == 0, token.stderr
    page_url = token.stderr.strip().rsplit("viewer page: ", 1)[-1]
    assert page_url.startswith(live.base + "/?feed=synth&token=")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(page_url)
            page.wait_for_selector("#feed option[value=synth]", state="attached", timeout=60_000)
            # `hls` is a page-level `let`: expose it to the probes as window.hls
            page.wait_for_function("() => typeof hls !== 'undefined' && hls !== null && current === 'synth'", timeout=60_000)
            page.evaluate("() => { window.hls = hls; }")
            page.evaluate(WATCH)
            deadline = time.monotonic() + 60
            seen: dict = {}
            while time.monotonic() < deadline:
                seen = page.evaluate(PROBE)
                if played(seen["status"]) > 4.0 and seen["seen"]["parts"] > 5:
                    break
                time.sleep(0.5)
        finally:
            browser.close()
    assert (seen["w"], seen["h"]) in {(r.width, r.height) for r in live.config.ladder.rungs}, seen
    # Four seconds played (the page counts only time that advanced while playing, not seeks).
    assert "synth: playing" in seen["status"] and "behind the camera" in seen["status"], seen
    assert played(seen["status"]) > 4.0, seen
    # hls.js used LL-HLS: the server's PART-HOLD-BACK, parts loaded, blocking playlist reloads
    assert seen["lowLatency"] is True and seen["partHoldBack"] and seen["partHoldBack"] > 0, seen
    assert seen["seen"]["parts"] > 5 and seen["seen"]["blocking"] > 3, seen
    # One signed master URL: every playlist, part, segment and init hls.js asked for carried it.
    signed = f"/live/t/{page_url.rsplit('token=', 1)[-1]}/synth/"
    assert len(seen["live"]) > 10 and all(p.startswith(signed) for p in seen["live"]), seen["live"][:5]
    # The feed table lists the failed feed with its reason, as /api/feeds does.
    assert "broken" in seen["feeds"] and "failed" in seen["feeds"], seen
