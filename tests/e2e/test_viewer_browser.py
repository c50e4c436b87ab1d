"""The viewer page in a real browser: Playwright drives Debian's headless Chromium to the signed
viewer URL `orbitcast token` prints, where hls.js plays the live feed in low-latency mode. The
test listens to the player's own events: it plays, it loads LL-HLS parts (not only whole
segments), it blocks on playlist reloads, and every live request carried the token. Then, on
the same page: the panel beside the player (ladder, latency, buffer, stalls, clock, input, the
ledger status of the segment on screen, checked in the browser), a forged proof shown as
FAILED, and the layout on a phone's screen."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

import pytest

from tests.browser import CHROMIUM, browser_page

pytestmark = pytest.mark.e2e
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
  seen: window.seen, paused: document.querySelector('video').paused, readyState: document.querySelector('video').readyState,
  live: performance.getEntriesByType('resource').map(e => new URL(e.name).pathname).filter(p => p.startsWith('/live/'))})"""


def played(status: str) -> float:
    """Seconds played, as the page's status line says ('... 4.2 s played ...')."""
    head = status.split(" s played")[0] if " s played" in status else ""
    try:
        return float(head.rsplit(" ", 1)[-1])
    except ValueError:
        return 0.0


@dataclass
class Viewer:
    page: object  # playwright.sync_api.Page
    url: str
    errors: list[str]  # uncaught exceptions in the page


@pytest.fixture(scope="module")
def viewer(live, tmp_path_factory: pytest.TempPathFactory):
    """One browser page on the signed viewer URL, shared by this file's tests (in file order)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it)")
    live.wait_media("synth", 4)
    config = tmp_path_factory.mktemp("viewer") / "orbitcast.yaml"
    config.write_text(yaml.safe_dump(live.config.model_dump(mode="json")))
    token = subprocess.run([str(Path(sys.executable).parent / "orbitcast"), "token", "synth", "--config", str(config),
                            "--ttl", "600", "--base", live.base], capture_output=True, text=True, timeout=60)
    assert token.returncode == 0, token.stderr
    page_url = token.stderr.strip().rsplit("viewer page: ", 1)[-1]
    with browser_page(page_url) as (page, errors):
        page.wait_for_selector("#feed option[value=synth]", state="attached", timeout=60_000)
        # `hls` is a page-level `let`: expose it to the probes as window.hls
        page.wait_for_function("() => typeof hls !== 'undefined' && hls !== null && current === 'synth'", timeout=60_000)
        page.evaluate("() => { window.hls = hls; }")
        page.evaluate(WATCH)
        yield Viewer(page, page_url, errors)


def test_a_signed_viewer_url_plays_the_live_feed_in_low_latency_mode(live, viewer: Viewer):
    page, page_url = viewer.page, viewer.url
    assert page_url.startswith(live.base + "/?feed=synth&token=")
    deadline = time.monotonic() + 60
    seen: dict = {}
    while time.monotonic() < deadline:
        seen = page.evaluate(PROBE)
        if played(seen["status"]) > 4.0 and seen["seen"]["parts"] > 5:
            break
        time.sleep(0.5)
    assert (seen["w"], seen["h"]) in {(r.width, r.height) for r in live.config.ladder.rungs}, seen
    # Four seconds played (the page counts only time that advanced while playing, not seeks).
    assert "synth: playing" in seen["status"] and "behind the camera" in seen["status"], seen
    assert played(seen["status"]) > 4.0, seen
    # hls.js used LL-HLS: the server's PART-HOLD-BACK, parts loaded, blocking playlist reloads
    assert seen["lowLatency"] is True and seen["partHoldBack"] and seen["partHoldBack"] > 0, seen
    brief = {k: seen[k] for k in ("status", "seen", "partHoldBack", "paused", "readyState")}
    assert seen["seen"]["parts"] > 5 and seen["seen"]["blocking"] > 3, brief
    # One signed master URL: every playlist, part, segment and init hls.js asked for carried it.
    signed = f"/live/t/{page_url.rsplit('token=', 1)[-1]}/synth/"
    assert len(seen["live"]) > 10 and all(p.startswith(signed) for p in seen["live"]), seen["live"][:5]
    # The feed table lists the failed feed with its reason, as /api/feeds does.
    assert "broken" in seen["feeds"] and "failed" in seen["feeds"], seen


# What the panel shows, as text on the screen, and where the player and the panel are.
PANEL = """() => {
  const text = id => document.getElementById(id).textContent;
  const box = el => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}; };
  return {stats: window.orbitcastStats,
    playing: [...document.querySelectorAll('#ladder button.playing')].map(b => b.textContent),
    rungs: document.querySelectorAll('#ladder button').length,
    latency: text('latency'), buffer: text('buffer'), stalls: text('stalls'), clock: text('clock'),
    input: text('input'), ledger: text('ledger'),
    sparkPoints: ['latency-spark', 'buffer-spark'].map(id => document.querySelector(`#${id} polyline`).getAttribute('points') || ''),
    video: box(document.getElementById('video')), panel: box(document.getElementById('panel')),
    innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth};
}"""
VERIFIED = "() => window.orbitcastStats && orbitcastStats.ledger.lastVerified !== null && orbitcastStats.latency > 0"


def test_the_panel_beside_the_player_shows_this_viewers_figures_and_the_ledger_check(live, viewer: Viewer):
    page = viewer.page
    try:
        page.wait_for_function(VERIFIED, timeout=60_000)
    except Exception:
        raise AssertionError(f"no segment verified: {page.evaluate('() => window.orbitcastStats && orbitcastStats.ledger')}")
    # A sparkline is a line from its second sample on (samples every 500 ms; a buffer figure
    # exists only once something is buffered, so it may start a sample after the latency).
    page.wait_for_function("(s => s && [s.latencies, s.buffers].every(l => l.filter(v => v !== null).length >= 2))"
                           "(window.orbitcastStats)", timeout=30_000)
    seen = page.evaluate(PANEL)
    stats = seen["stats"]
    # Beside the player on a wide screen.
    assert seen["panel"]["left"] >= seen["video"]["right"], seen
    # The ladder: every rung and "auto"; one highlighted, the rung hls.js plays, one of the config's.
    rungs = {r.name: r for r in live.config.ladder.rungs}
    assert seen["rungs"] == len(rungs) + 1, seen
    level = stats["level"]
    assert level["name"] in rungs, level
    rung = rungs[level["name"]]
    assert (level["width"], level["height"]) == (rung.width, rung.height), level
    assert len(seen["playing"]) == 1 and seen["playing"][0].startswith(f"{rung.name} {rung.width}x{rung.height} "), seen
    # Latency on the clock authority's time and the buffer, each with its sparkline drawn.
    assert stats["latency"] > 0 and "behind the camera" in seen["latency"], seen
    assert stats["buffer"] is not None and stats["buffer"] >= 0 and " s ahead" in seen["buffer"], seen
    assert all(len(points.split()) >= 2 for points in seen["sparkPoints"]), seen["sparkPoints"]
    assert stats["stalls"]["count"] >= 0 and seen["stalls"], seen
    # The clock offset to /time and its error bound.
    assert stats["offset"]["errorMs"] > 0 and " ms ± " in seen["clock"], seen
    # The feed's input as /api/feeds reports it.
    feed = live.feeds()["synth"]
    assert stats["input"]["state"] == feed["state"] == "live", (stats["input"], feed)
    input_state = seen["input"]
    assert f"picture {feed['input']['picture']}" in input_state and f"sound {feed['input']['sound']}" in input_state, seen
    # A segment that was on screen verified in the browser, its tree head's signature included
    # (Debian's Chromium has Ed25519 in WebCrypto); the ledger agrees with the segment's bytes.
    verified = stats["ledger"]["lastVerified"]
    assert f"verified {verified['segment']} (tree size {verified['treeSize']})" in seen["ledger"] or \
        seen["ledger"].startswith(f"{verified['segment']}: verified (tree size {verified['treeSize']})"), seen["ledger"]
    assert verified["signature"] == "verified" and stats["ledger"]["failed"] == 0, stats["ledger"]
    rendition, seq = verified["segment"].split("/")
    proof = live.get(f"/ledger/synth/proof/{rendition}/{seq}").json()
    segment = live.get(f"/live/synth/{rendition}/{seq}.m4s")
    assert segment.status_code == 200 and proof["leaf_fields"]["sha256"] == hashlib.sha256(segment.content).hexdigest()
    assert viewer.errors == []


def test_a_forged_proof_shows_failed(viewer: Viewer):
    """A proxy between the viewer and the ledger that swaps the segment's digest in the proof:
    the audit path no longer leads to the signed root, and the panel says FAILED."""
    page = viewer.page

    def forge(route) -> None:
        response = route.fetch()
        body = response.json()
        if response.status == 200:
            body["leaf"] = body["leaf"][:-2] + ("00" if body["leaf"][-2:] != "00" else "01")
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/ledger/synth/proof/**", forge)
    try:
        try:
            page.wait_for_function("() => orbitcastStats.ledger.status === 'FAILED'", timeout=30_000)
        except Exception:
            state = page.evaluate("() => [orbitcastStats.ledger, Date.now(), document.querySelector('video').currentTime, window.seen, orbitcastStats.latency]")
            raise AssertionError(f"no FAILED: {state}")
        ledger = page.evaluate("() => ({stats: orbitcastStats.ledger, text: document.getElementById('ledger').textContent})")
    finally:
        # a forge still running when the route goes would fulfil a request already let through
        page.unroute_all(behavior="wait")
    assert ledger["stats"]["failed"] >= 1, ledger
    assert "FAILED: not in the log: audit path leads to a different root" in ledger["text"], ledger


def test_on_a_phone_the_panel_is_under_the_player_and_nothing_scrolls_sideways(viewer: Viewer):
    page = viewer.page
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => window.innerWidth === 390")
    seen = page.evaluate(PANEL)
    assert seen["scrollWidth"] <= seen["innerWidth"] == 390, seen
    for box in (seen["video"], seen["panel"]):
        assert box["width"] > 0 and box["left"] >= 0 and box["right"] <= 390, seen
    assert seen["panel"]["top"] >= seen["video"]["bottom"] and seen["panel"]["top"] < 844, seen
    assert page.is_visible("#video") and page.is_visible("#ledger") and page.is_visible("#latency-spark"), seen


# Put the player 6 s behind the edge hls.js sees (within the playlist), as stalls on a busy
# machine did, and log the seeks that follow.
SEEK_BACK = """() => {
  const v = document.querySelector('video'), d = hls.latestLevelDetails;
  window.seeks = [];
  const to = Math.max(d.fragmentStart + 0.5, d.edge - 6);
  v.currentTime = to;
  v.addEventListener('seeking', () => seeks.push(v.currentTime));
  return {to, edge: d.edge};
}"""
LATENCY = "() => ({latency: hls.latency, target: hls.targetLatency, t: document.querySelector('video').currentTime, seeks: window.seeks || []})"


def test_a_viewer_left_far_behind_the_live_edge_jumps_back_to_it(live, viewer: Viewer):
    # hls.js plays faster only within about a target duration of its target latency; further
    # behind, the page's liveMaxLatencyDurationCount brings it back (without it, it stays there).
    page = viewer.page
    page.wait_for_function("() => hls.latency !== null", timeout=30_000)
    max_latency = 4 * math.ceil(live.config.segment_duration)  # 4 target durations
    sought = page.evaluate(SEEK_BACK)
    assert sought["edge"] - sought["to"] > max_latency + 0.5, sought
    try:  # it seeks forward, back within the max latency
        page.wait_for_function("() => seeks.some(t => t > %f) && hls.latency < %f" % (sought["to"] + 3, max_latency),
                               timeout=20_000)
    except Exception:
        raise AssertionError(f"still behind: {page.evaluate(LATENCY)}, after the seek to {sought}")
    before = page.evaluate(LATENCY)
    page.wait_for_function("t => document.querySelector('video').currentTime > t + 1", arg=before["t"], timeout=15_000)
