"""`orbitcast playtest` against the live test pipeline: a 20 s run of one hls.js player in
headless Chromium (Debian's) and 20 simulated LL-HLS viewers. The JSON report has a session per
player with plausible figures, every simulated viewer's media count matches its own request log
(and what it logged is what the server serves), the HTML report and its plots are written, the
browser has its P.1203 input, and the picture quality measured per rung (orbitcast quality) is
in the report with the VMAF the browser watched. Then a 20 s run of two browsers alone, one
throttled: it plays a lower rung than the unthrottled one. (Both browsers and the 20 viewers in
one run left the two cores too busy for either browser to play: the throttled one played half
a second in 20 s, and neither changed rung.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import requests
from PIL import Image

from orbitcast.quality import measure

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECONDS, VIEWERS = 20, 20
# The test ladder's rungs carry 696 and 396 kbit/s on average (video + audio): stock 3g (1.6 Mbit/s)
# carries both, so the throttled browser gets 3g's round trip and CPU with a 500 kbit/s downlink,
# under the top rung and over the bottom one.
# The console profile with its downlink cut to 500 kbit/s: what is compared is hls.js's choice
# of rung under a throttled network. The 3g profile also slows the page's CPU 4x; on two busy
# cores (a full `make test`) such a page once never started playing in the 30 s.
THROTTLED = "console@500k"
THROTTLED_SECONDS = 30
PLAYER_CONFIG = {"abrEwmaDefaultEstimate": 5_000_000, "lowLatencyMode": False}
MEDIA = ("part", "hint", "segment")


@pytest.fixture(scope="module")
def run(live, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    live.wait_media("synth", 4)
    out = tmp_path_factory.mktemp("playtest") / "report.json"
    # the feed's picture quality per rung (docs/quality.md), for the report's quality section
    quality = out.with_name("quality.json")
    quality.write_text(json.dumps(measure(live.config, "synth", 2.0)))
    return playtest(live, out, "--viewers", str(VIEWERS), "--profiles", "console", "--ramp", "4", "--request-log",
                    "--quality", str(quality))


@pytest.fixture(scope="module")
def throttled(live, tmp_path_factory: pytest.TempPathFactory) -> dict:
    live.wait_media("synth", 4)
    out = tmp_path_factory.mktemp("playtest-throttled") / "report.json"
    # Both start on the top rung (hls.js's first guess of the bandwidth, before it measures any,
    # set above it): the throttled one must come down, the other has no reason to. From hls.js's
    # default guess (500 kbit/s) both started on the bottom rung, and on busy cores (a start-up of
    # 9-12 s in a full run) the unthrottled one had not climbed by the end. Classic mode (whole
    # segments): what is compared is hls.js's choice of rung, and in low-latency mode on these
    # busy cores parts came later than the 0.8 s hls.js gives a blocking reload (max(3 parts,
    # 0.8 target durations)), both players stalled most of the run and neither changed rung.
    return playtest(live, out, "--profiles", f"console,{THROTTLED}", "--seconds", str(THROTTLED_SECONDS),
                    "--player-config", json.dumps(PLAYER_CONFIG))[0]


def playtest(live, out: Path, *options: str) -> tuple[dict, Path]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it)")
    cmd = [str(Path(sys.executable).parent / "orbitcast"), "playtest", f"{live.base}/live/synth/master.m3u8",
           "--seconds", str(SECONDS), "--audio-kbps", str(live.config.ladder.audio_bitrate / 1000), "--out", str(out),
           *options]  # a later --seconds wins
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=THROTTLED_SECONDS + 150)
    assert done.returncode == 0, done.stdout + done.stderr  # no budget given: 0 unless a player never played
    assert done.stdout.splitlines()[0].split()[:2] == ["players", "n"], done.stdout  # the summary table
    return json.loads(out.read_text()), out.parent


def test_a_session_per_player_with_plausible_figures(run):
    report, _ = run
    sessions = report["sessions"]
    assert report["clock"]["source"].endswith("/time") and report["clock"]["rtt_s"] is not None
    assert [s["kind"] for s in sessions].count("browser") == 1
    assert [s["kind"] for s in sessions].count("simulated") == VIEWERS
    assert len({s["id"] for s in sessions}) == len(sessions)
    for s in sessions:
        assert s["error"] is None, s["id"]
        assert 0 < s["startup_s"] < 15, (s["id"], s["startup_s"])
        assert s["played_s"] > 0, (s["id"], s["played_s"])
        # glass-to-glass on the clock authority's time: positive, and not absurd on a busy machine
        assert s["latency_s"] is not None and 0 < s["latency_s"]["min"] and s["latency_s"]["p95"] < 30, s["id"]
        assert s["media_requests"] > 0 and s["bytes"] > 0, s["id"]
        assert s["main_rendition"] in {"360p", "240p"}, s["id"]
    for s in sessions:
        if s["kind"] == "simulated":  # the server offers LL-HLS: blocking reloads and parts, no polling
            assert s["requests"]["reload"] > SECONDS and s["requests"].get("part", 0) + s["requests"].get("hint", 0) > SECONDS
    totals = report["totals"]["all"]
    assert totals["sessions"] == VIEWERS + 1 and totals["started"] == VIEWERS + 1
    assert totals["media_requests"] == sum(s["media_requests"] for s in sessions)


def test_media_counted_is_what_each_viewer_got_and_what_the_server_serves(run, live):
    report, folder = run
    log = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    got = defaultdict(int)
    size = defaultdict(int)
    for e in log:
        if e["status"] == 200 and e["kind"] in MEDIA:
            got[e["session"]] += 1
        if e["status"] == 200 and e["kind"] in (*MEDIA, "init"):
            size[e["session"]] += e["bytes"]
    for s in report["sessions"]:
        if s["kind"] == "simulated":
            assert s["media_requests"] == got[s["id"]] > 0, s["id"]
            assert s["bytes"] == size[s["id"]], s["id"]
    # What a viewer logged is what the server serves under that URL: its last whole segment and
    # part, fetched again (both stay fetchable for several target durations).
    mine = [e for e in log if e["session"] == "v000" and e["status"] == 200]
    for kind in ("segment", "hint"):
        last = [e for e in mine if e["kind"] == kind]
        if last:
            again = requests.get(last[-1]["url"], timeout=10)
            assert again.status_code == 200 and len(again.content) == last[-1]["bytes"], last[-1]


def test_html_report_plots_and_p1203_inputs(run, live):
    report, folder = run
    html = (folder / report["files"]["html"]).read_text()
    assert len(report["files"]["plots"]) == 4
    for name in report["files"]["plots"]:
        assert f"src='{name}'" in html
        with Image.open(folder / name) as im:
            im.verify()
            assert im.format == "PNG"
    sizes = {f"{r.width}x{r.height}" for r in live.config.ladder.rungs}
    assert len(report["files"]["p1203"]) == 1
    for name in report["files"]["p1203"]:
        data = json.loads((folder / name).read_text())
        video = data["I13"]["segments"]
        assert video and all(seg["resolution"] in sizes and seg["codec"] == "h264" and seg["bitrate"] > 0 for seg in video)
        assert data["I11"]["segments"] and data["I23"]["stalling"][0][0] == 0
        assert data["IGen"]["device"] in {"pc", "mobile"}


def test_the_throttled_browser_plays_a_lower_rung_than_the_unthrottled_one(throttled, live):
    report = throttled
    assert {k: report["player_config"][k] for k in PLAYER_CONFIG} == PLAYER_CONFIG  # --player-config reached the page
    by_profile = {s["profile"]: s for s in report["sessions"] if s["kind"] == "browser"}
    fast, slow = by_profile["console"], by_profile[THROTTLED]
    audio = live.config.ladder.audio_bitrate
    rungs = sorted(r.video_bitrate + audio for r in live.config.ladder.rungs)
    # meaningful for this ladder: the throttled downlink carries the bottom rung, not the top one
    assert rungs[0] < slow["extra"]["profile"]["down_bps"] < rungs[-1] < fast["extra"]["profile"]["down_bps"]

    def mean_bitrate(s: dict) -> float:
        rates = {r[1]: r[2] for r in s["series"]["renditions"]}
        seconds = s["rendition_seconds"]
        return sum(rates[n] * t for n, t in seconds.items()) / sum(seconds.values())

    assert mean_bitrate(slow) < mean_bitrate(fast), (slow["series"]["renditions"], fast["series"]["renditions"])
    # where hls.js settled: the throttled player ends on the bottom rung
    bottom = min(live.config.ladder.rungs, key=lambda r: r.video_bitrate).name
    assert slow["series"]["renditions"][-1][1] == bottom, slow["series"]["renditions"]


def test_the_report_has_the_picture_quality_each_browser_watched(run, live):
    report, folder = run
    rungs = {r["name"]: r["vmaf"]["mean"] for r in report["quality"]["measurement"]["rungs"]}
    assert list(rungs) == [r.name for r in live.config.ladder.rungs]
    watched = {w["id"]: w["vmaf"] for w in report["quality"]["watched"] if w["kind"] == "browser"}
    assert len(watched) == 1
    for vmaf in watched.values():  # a mix of the rungs it played
        assert vmaf is not None and min(rungs.values()) - 0.01 <= vmaf <= max(rungs.values()) + 0.01
    assert "<h2>Picture quality</h2>" in (folder / report["files"]["html"]).read_text()
