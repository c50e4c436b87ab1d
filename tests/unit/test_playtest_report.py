"""The playtest report from recorded sessions: the figures, the QoE budget, the JSON and HTML
with plots that open as images, the P.1203 mode 0 input, device profiles, and the command
line's refusals (no network needed for any of it)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from orbitcast.playtest import p1203
from orbitcast.playtest.errors import PlaytestError
from orbitcast.playtest.plots import stalls_by_load, write_html, write_plots
from orbitcast.playtest.profiles import PROFILES, assign, parse_rate, profile
from orbitcast.playtest.report import SETTLE_S, build_report, table
from orbitcast.playtest.session import RenditionChange, SessionRecord
from pipelines.cli import main


def browser(sid: str = "b0", prof: str = "console") -> SessionRecord:
    r = SessionRecord(sid, "browser", prof, joined=1.0, ended=21.0, first_play=2.5)
    r.stalls = [(10.0, 11.0)]
    r.played_s = 17.5  # 21 - 2.5 - 1 stalled
    r.latency = [(2.5 + i * 0.5, 0.9 if i * 0.5 >= SETTLE_S else 5.0) for i in range(37)]
    r.renditions = [RenditionChange(2.4, "360p", 696_000, 360), RenditionChange(12.0, "240p", 396_000, 240)]
    r.bytes, r.requests, r.errors = 900_000, Counter(part=80, playlist=75), Counter(levelLoadTimeOut=1)
    r.extra["network"] = [(1.0, 8e6)]
    return r


def simulated(i: int, start: float, stalls: list[tuple[float, float]] = ()) -> SessionRecord:
    r = SessionRecord(f"v{i:03d}", "simulated", None, joined=start, ended=21.0, first_play=start + 0.05)
    r.stalls = list(stalls)
    r.played_s = 21.0 - r.first_play - sum(b - a for a, b in r.stalls)
    r.latency = [(r.first_play + t / 2, 1.0 + i / 10) for t in range(1, 2 * int(21 - r.first_play))]
    r.renditions = [RenditionChange(start, "360p", 696_000, 360)]
    r.bytes, r.requests = 1_500_000, Counter(part=40, hint=60, reload=100, init=1, master=1, playlist=1)
    return r


def sample_report(**budget) -> dict:
    records = [browser(), *(simulated(i, i * 0.5, [(15.0, 15.5)] if i == 3 else []) for i in range(6))]
    meta = {"url": "http://127.0.0.1:8000/live/iss/master.m3u8", "started": "2025-03-01T12:00:00+00:00",
            "seconds": 21.0, "viewers": 6, "browsers": 1, "clock": {"source": "http://127.0.0.1:8000/time", "offset_s": 0.01}}
    return build_report(meta, records, budget.get("max_stall_ratio"), budget.get("max_latency"))


def test_figures_per_session():
    report = sample_report()
    b = report["sessions"][0]
    assert b["startup_s"] == 1.5 and b["stalls"] == 1 and b["stalled_s"] == 1.0
    assert b["rebuffer_ratio"] == pytest.approx(1.0 / 18.5, abs=1e-5)
    # the samples of the first seconds after startup (5 s here) are left out of the percentiles
    assert b["latency_s"]["p50"] == b["latency_s"]["p95"] == 0.9
    assert b["switches"] == 1 and b["rendition_seconds"] == {"360p": 9.5, "240p": 9.0}
    assert b["main_rendition"] == "360p" and b["main_bitrate"] == 696_000
    assert b["media_requests"] == 80 and b["request_errors"] == 1
    v = report["sessions"][1]
    assert v["media_requests"] == 100 and v["requests"]["hint"] == 60


def test_totals_pool_every_player():
    t = sample_report()["totals"]
    assert t["all"]["sessions"] == 7 and t["browsers"]["sessions"] == 1 and t["simulated"]["sessions"] == 6
    assert t["all"]["stalls"] == 2 and t["all"]["sessions_with_stalls"] == 2
    stalled, played = 1.5, t["all"]["played_s"]
    assert t["all"]["rebuffer_ratio"] == pytest.approx(stalled / (played + stalled), abs=1e-5)
    lat = t["simulated"]["latency_s"]  # every viewer's samples after it settled, together
    assert (lat["min"], lat["max"]) == (1.0, 1.5) and 1.0 < lat["p50"] < 1.5
    assert lat["n"] == sum(s["latency_s"]["n"] for s in sample_report()["sessions"][1:])
    assert t["profile console"]["sessions"] == 1


def test_the_budget_fails_on_stalls_latency_and_players_that_never_started():
    assert sample_report(max_stall_ratio=0.05, max_latency=2.0)["budget"]["passed"]
    bad = sample_report(max_stall_ratio=0.001, max_latency=1.2)["budget"]
    assert not bad["passed"] and len(bad["violations"]) == 2
    assert "rebuffer ratio" in bad["violations"][0] and "latency p95" in bad["violations"][1]
    records = [simulated(0, 0.0)]
    records[0].first_play = None
    never = build_report({"seconds": 21.0}, records, None, None)["budget"]
    assert not never["passed"] and "never started" in never["violations"][0]


def test_the_summary_table_has_a_row_per_browser_and_the_simulated_viewers_together():
    text = table(sample_report(max_latency=0.5))
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["players", "n"]
    assert lines[1].startswith("b0 console [360p]") and lines[2].startswith("simulated") and lines[3].startswith("all")
    assert "EXCEEDED" in lines[-1]


def test_plots_and_html_are_written_and_the_plots_open(tmp_path: Path):
    report = sample_report()
    plots = write_plots(report, tmp_path)
    assert [p.name for p in plots] == ["latency.png", "renditions.png", "cdf.png", "stalls.png"]
    for p in plots:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    html = write_html(report, tmp_path / "report.html", plots).read_text()
    assert all(f"src='{p.name}'" in html for p in plots)
    assert "v005" in html and "QoE budget: kept" in html
    json.dumps(report)  # the JSON report is plain data


def test_stalls_against_viewer_count_counts_players_playing_in_each_interval():
    pts = stalls_by_load(sample_report())
    assert len(pts) == 20 and max(p[1] for p in pts) == 7
    assert sum(p[2] for p in pts) == 2  # each stall counted once, where it began


def test_p1203_mode0_input_from_hls_js_fragments():
    levels = [{"name": "360p", "bitrate": 696_000, "width": 640, "height": 360, "videoCodec": "avc1.64001e",
               "audioCodec": "mp4a.40.2", "frameRate": 30}]
    # segment 7 loaded as five 0.2 s parts of 20 kB, segment 8 whole (125 kB), one part loaded twice
    frags = [{"at": i, "level": 0, "sn": 7, "part": i, "start": 10.0 + 0.2 * i, "duration": 0.2, "bytes": 20_000}
             for i in range(5)]
    frags += [{"at": 9, "level": 0, "sn": 7, "part": 4, "start": 10.8, "duration": 0.2, "bytes": 20_000},
              {"at": 10, "level": 0, "sn": 8, "part": -1, "start": 11.0, "duration": 1.0, "bytes": 125_000}]
    data = p1203.mode0_input(levels, frags, startup_s=1.2, stalls=[(11.5, 0.7)], device="pc", display="1920x1080",
                             audio_kbps=96)
    assert set(data) == {"I11", "I13", "I23", "IGen"}
    video = data["I13"]["segments"]
    assert [s["start"] for s in video] == [0.0, 1.0] and [s["duration"] for s in video] == [1.0, 1.0]
    assert [s["bitrate"] for s in video] == [800 - 96, 1000 - 96]  # measured, less the audio
    assert video[0]["codec"] == "h264" and video[0]["resolution"] == "640x360" and video[0]["fps"] == 30.0
    assert data["I11"]["segments"][0] == {"start": 0.0, "duration": 1.0, "bitrate": 96, "codec": "aaclc"}
    assert data["I23"]["stalling"] == [[0.0, 1.2], [1.5, 0.7]]
    assert data["IGen"] == {"device": "pc", "displaySize": "1920x1080", "viewingDistance": "150cm"}


def test_profiles_by_name_with_their_own_downlink_in_turn():
    assert profile("3g").network.down_bps == 1.6e6 and profile("3g").network.rtt_ms == 300
    slow = profile("3g@500k")
    assert slow.network.down_bps == 500_000 and slow.network.rtt_ms == 300 and slow.cpu_slowdown == 4
    assert slow.network.cdp() == {"offline": False, "latency": 300, "downloadThroughput": 62_500.0,
                                  "uploadThroughput": 93_750.0}
    assert [p.name for p in assign(None, 5)] == ["console", "4g", "3g", "stairs", "console"]
    assert [p.name for p in assign("console,3g", 3)] == ["console", "3g", "console"]
    assert parse_rate("1.6M") == 1.6e6 and parse_rate("800000") == 800_000
    for bad in ("5g", "3g@fast", "3g@5"):
        with pytest.raises(PlaytestError):
            profile(bad)


def test_stairs_step_the_downlink_down_and_back_up():
    s = PROFILES["stairs"]
    downs = [s.at(i / 7 + 0.01).down_bps for i in range(7)]
    assert downs == [8e6, 4e6, 1.6e6, 0.8e6, 1.6e6, 4e6, 8e6]
    assert s.step_times(70) == [0, 10, 20, 30, 40, 50, 60]


@pytest.mark.parametrize("argv, message", [
    (["ftp://example/x.m3u8", "--viewers", "1"], "not an http(s) URL"),
    (["http://127.0.0.1:9/x.m3u8"], "nothing to play"),
    (["http://127.0.0.1:9/x.m3u8", "--viewers", "1", "--seconds", "0"], "--seconds"),
    (["http://127.0.0.1:9/x.m3u8", "--viewers", "1", "--max-stall-ratio", "2"], "--max-stall-ratio"),
    (["http://127.0.0.1:9/x.m3u8", "--browsers", "1", "--profiles", "5g", "--chromium", "/bin/true"], "unknown profile"),
])
def test_the_command_refuses_what_it_cannot_run(argv, message, capsys, tmp_path):
    assert main(["playtest", *argv, "--out", str(tmp_path / "r.json")]) == 2
    assert message in capsys.readouterr().err
