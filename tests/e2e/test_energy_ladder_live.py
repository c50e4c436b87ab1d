"""The live ladder following a simulated solar day (docs/energy.md): a pipeline of its own
(`own_cluster`) whose governor runs a winter day at Lerwick from 08:00, one site hour in 15 s of
wall time. The plan keeps the full ladder at 08:00, drops the top rung at 09:00 (a battery hour
before the sunny ones) and brings it back at 10:00. Real clients watch it happen: hls.js in
Chromium plays the viewer page across both changes, ffmpeg reads the top rung's playlist across
them, and the `m3u8` parser sees the dropped hour as EXT-X-GAP segments between media."""

from __future__ import annotations

import subprocess
import threading
import time

import m3u8
import pytest
import requests

from tests.browser import CHROMIUM, browser_page
from tests.small_pipeline import BOTTOM, TOP, small_config
from tests.waiting import wait_for

pytest.importorskip("pvlib", reason="the energy extra (pvlib) is not installed")

pytestmark = [pytest.mark.own_cluster, pytest.mark.e2e]

FEED = "sun"
HOUR_S = 15.0  # wall seconds per site hour
# Lerwick (60.15 N) on the shortest day; with this battery the plan from 08:00 is: 08 full,
# 09 drop 180p, 10-13 full, 14 on dropped (tests/unit/test_energy_governor.py runs such days).
SITE = {"latitude": 60.15, "longitude": -1.15, "altitude_m": 80, "timezone": "Europe/London", "kwp": 0.13,
        "tilt": 60, "battery_wh": 300, "initial_soc": 0.7, "night_reserve": 0.2, "end_soc": "start"}


class Sun:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.base = pipeline.url.rstrip("/")
        self.masters: list[tuple[float, list[str]]] = []  # (wall time, rungs the master lists)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=15)

    def master_rungs(self) -> list[str] | None:
        r = self.get(f"/live/{FEED}/master.m3u8")
        return [p.uri.split("/")[0] for p in m3u8.loads(r.text).playlists] if r.status_code == 200 else None

    def playlist(self, rung: str) -> m3u8.M3U8:
        r = self.get(f"/live/{FEED}/{rung}/index.m3u8")
        assert r.status_code == 200, r.text
        return m3u8.loads(r.text)

    def ladder(self) -> dict:
        return self.get("/api/energy").json()["ladder"]

    def start_day(self) -> None:
        """The governor's day began when the pipeline started, however long the first segment
        took to reach the players on a loaded machine. A restarted governor starts its simulated
        day again (docs/energy.md): restarted now, 08:00 is now."""
        import ray

        killed = time.time()
        ray.kill(self.pipeline.governor, no_restart=False)
        wait_for("the day started again", lambda: [c["at"] > killed for c in self.ladder().get("changes", [])] == [True],
                 timeout=60, every=0.25)
        wait_for("the top rung playable", lambda: (self.master_rungs() or []) == [TOP, BOTTOM], timeout=HOUR_S, every=0.25)
        self.masters.clear()


@pytest.fixture(scope="module")
def sun(tmp_path_factory: pytest.TempPathFactory):
    import ray
    from ray import serve

    from pipelines.live import start
    from pipelines.local import init_local_ray

    assert not ray.is_initialized(), "own_cluster: this module must run before the shared Ray starts"
    tmp = tmp_path_factory.mktemp("energy-ladder")
    source = ("lavfi:testsrc2=size=320x180:rate=15,format=yuv420p[out0];"
              "sine=frequency=440:sample_rate=48000[out1]")
    config = small_config(
        tmp, {"name": FEED, "source": source, "slate_after": None},
        # the model's loads (no accounting to scale them by): the day's steps are the ones above
        energy={"enabled": False, "power": {"cpus": 2}, "site": SITE,
                "costs": {"rung_cpu": {TOP: 0.206, BOTTOM: 0.103}},
                "follow_plan": {"enabled": True, "simulate_date": "2024-12-21", "start_hour": 8,
                                "minutes": 24 * HOUR_S / 60, "poll_s": 0.25}})
    init_local_ray(namespace="orbitcast-energy-test", num_cpus=4, log_to_driver=False)
    pipeline = start(config)
    try:
        s = Sun(pipeline)
        stop = threading.Event()

        def watch_master() -> None:
            while not stop.is_set():
                try:
                    rungs = s.master_rungs()
                    if rungs is not None:
                        s.masters.append((time.monotonic(), rungs))
                except requests.RequestException:
                    pass
                time.sleep(0.5)

        watcher = threading.Thread(target=watch_master, daemon=True)
        watcher.start()
        wait_for("the feed playable", lambda: s.master_rungs(), timeout=120)
        yield s
        stop.set()
        watcher.join(5)
    finally:
        pipeline.stop()
        serve.shutdown()
        ray.shutdown()


PROBE = """() => ({t: document.querySelector('video').currentTime, stats: window.orbitcastStats,
  level: window.hls ? hls.currentLevel : null, levels: window.hls ? hls.levels.map(l => l.height) : [],
  fatal: window.fatal || []})"""
WATCH = """() => {
  window.fatal = []; window.levelsPlayed = []; window.videoEvents = [];
  const video = document.querySelector('video');
  for (const e of ['waiting', 'playing']) video.addEventListener(e, () => videoEvents.push([e, Date.now() / 1000]));
  const attach = () => {
    if (typeof hls === 'undefined' || !hls) return setTimeout(attach, 100);
    window.hls = hls;
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) fatal.push(d.details); });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => levelsPlayed.push(hls.levels[d.level].height));
  };
  attach();
}"""


def _settled(page) -> bool:
    """The video has played 3 s on since it last waited."""
    return page.evaluate("""() => {
      const v = document.querySelector('video');
      if (!videoEvents.length && !v.paused && v.currentTime > 0) videoEvents.push(['playing', Date.now() / 1000]);
      const last = videoEvents[videoEvents.length - 1];
      if (!last || last[0] !== 'playing') return false;
      window.playingFrom = window.playingFrom && window.playingFrom[0] === last[1] ? window.playingFrom : [last[1], v.currentTime];
      return v.currentTime - window.playingFrom[1] >= 3;
    }""")


def test_the_top_rung_is_dropped_and_brought_back_while_players_keep_playing(sun: Sun) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it)")
    probes = []
    with browser_page(f"{sun.base}/?feed={FEED}") as (page, errors):
        page.evaluate(WATCH)
        # The player settles first: 3 s played on without a stall. Its start on two busy cores
        # is not what this test watches (hls.js there sometimes waits seconds after its first
        # parts while the playlists it blocks on keep coming); the day starts once it plays,
        # and its stalls count from then.
        wait_for("the player playing on", lambda: _settled(page), timeout=120, every=0.5)
        before = page.evaluate(PROBE)
        sun.start_day()  # 08:00 again: the hours this test watches
        page.evaluate("() => { window.levelsPlayed = [hls.levels[hls.currentLevel].height]; }")
        # ffmpeg reads the top rung's playlist across both changes (a player fixed on one variant)
        reader = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "warning", "-i", f"{sun.base}/live/{FEED}/{TOP}/index.m3u8",
             "-t", str(2.5 * HOUR_S), "-map", "0:v", "-fps_mode", "passthrough", "-f", "framecrc", "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # until the top rung is back and has played a while
        restored = None
        deadline = time.monotonic() + 4 * HOUR_S
        while time.monotonic() < deadline:
            probes.append(page.evaluate(PROBE) | {"at": time.time()})
            steps = [c["rungs"] for c in sun.ladder().get("changes", [])]
            if restored is None and len(steps) >= 3 and TOP in steps[-1]:
                restored = time.monotonic()
            if restored is not None and time.monotonic() - restored > 8:
                break
            time.sleep(0.5)
        levels_played = page.evaluate("() => window.levelsPlayed")
        page_events = page.evaluate("() => window.videoEvents")
    out, err = reader.communicate(timeout=4 * HOUR_S)

    # the governor dropped the top rung and brought it back, in the plan's hours
    changes = sun.ladder()["changes"]
    assert [c["rungs"] for c in changes[:3]] == [[TOP, BOTTOM], [BOTTOM], [TOP, BOTTOM]], changes
    assert [c["site_time"][11:16] for c in changes[1:3]] == ["09:00", "10:00"], changes
    # the multivariant playlist left the top rung out for new players, then listed it again
    seen = [rungs for _, rungs in sun.masters]
    assert [BOTTOM] in seen and seen[-1] == [TOP, BOTTOM], seen
    # the top rung's playlist: media, the dropped hour in gaps, media again, on one timeline
    pl = sun.playlist(TOP)
    kinds = "".join("g" if s.gap_tag else "m" for s in pl.segments if s.uri)
    assert "mgggg" in kinds and kinds.rstrip("m").endswith("g") and kinds.endswith("mm"), kinds
    # hls.js played throughout: no fatal error, no page error, the picture went on; the switch
    # off the dropped rung (a GAP part, then the rung below's playlist, init and part) costs a
    # short stall here (0.08 to 0.68 s measured), well under a segment
    assert not errors and not probes[-1]["fatal"], (errors, probes[-1])
    times = [p["t"] for p in probes]
    assert times[-1] - times[0] > 2 * HOUR_S * 0.8, times
    # the player played the rung below through the dropped hour (hls.js on the top rung when it
    # was dropped switched down; on busy cores ABR may have taken it there before)
    def height(p: dict) -> int | None:
        return p["levels"][p["level"]] if p["level"] is not None and 0 <= p["level"] < len(p["levels"]) else None

    dropped = [height(p) for p in probes if changes[1]["at"] + HOUR_S / 3 < p["at"] < changes[2]["at"]]
    assert dropped and set(dropped) == {90}, (dropped, levels_played)
    assert levels_played[:2] in ([180, 90], [90]) or levels_played[:3] == [90, 180, 90], levels_played
    stalls, settled = probes[-1]["stats"]["stalls"], before["stats"]["stalls"]
    count, seconds = stalls["count"] - settled["count"], stalls["seconds"] - settled["seconds"]
    assert count <= 2 and seconds < 2.0, (stalls, settled, page_events)
    # ffmpeg (5.1 does not know EXT-X-GAP) asked for the gap segments, got 404 for each and
    # read on without a decode error: every segment it could not open is one the playlist
    # lists as a gap, and it decoded media before and after the dropped hour
    assert reader.returncode == 0, err
    gaps = {int(x.uri.split(".")[0]) for x in pl.segments if x.uri and x.gap_tag}
    failed = {int(line.split("segment ")[1].split()[0]) for line in err.splitlines() if "Failed to open segment" in line}
    assert failed and failed <= gaps, (failed, gaps)
    assert not [line for line in err.splitlines()
                if "rror while decoding" in line or "Invalid data" in line or "corrupt" in line.lower()], err
    frames = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert len(frames) > 15 * (2.5 * HOUR_S - 2 * HOUR_S) and len(frames) > 15 * HOUR_S, len(frames)
