"""Real clients against the live pipeline served by Ray Serve: ffprobe, ffmpeg, the m3u8 parser."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import m3u8
import pytest

from orbitcast.delivery.policy import policy_of
from tests.hls import whole_segments

pytestmark = pytest.mark.e2e


def ffprobe_json(*args: str, data: bytes | None = None) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args], input=data, capture_output=True, timeout=60, check=True,
    )
    return json.loads(out.stdout)


def playlist(live, feed: str, rendition: str) -> m3u8.M3U8:
    r = live.get(f"/live/{feed}/{rendition}/index.m3u8")
    assert r.status_code == 200, r.text
    return m3u8.loads(r.text, uri=f"{live.base}/live/{feed}/{rendition}/index.m3u8")


def test_ffprobe_lists_every_rung_from_master(live):
    live.wait_media("synth", 8)
    info = ffprobe_json("-show_entries", "stream=codec_type,codec_name,width,height", f"{live.base}/live/synth/master.m3u8")
    video = {(s["width"], s["height"]) for s in info["streams"] if s["codec_type"] == "video"}
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert video == {(r.width, r.height) for r in live.config.ladder.rungs}
    assert audio and all(s["codec_name"] == "aac" for s in audio)
    assert all(s["codec_name"] == "h264" for s in info["streams"] if s["codec_type"] == "video")


def test_master_playlist_announces_each_rung(live):
    master = m3u8.loads(live.get("/live/synth/master.m3u8").text)
    by_uri = {p.uri: p.stream_info for p in master.playlists}
    for rung in live.config.ladder.rungs:
        info = by_uri[f"{rung.name}/index.m3u8"]
        assert info.resolution == (rung.width, rung.height)
        assert info.bandwidth >= rung.video_bitrate
        assert info.codecs.startswith("avc1.") and "mp4a.40.2" in info.codecs


@pytest.mark.parametrize("rung", ["360p", "240p"])
def test_ffmpeg_reads_each_rung_for_10s_without_errors(live, rung):
    url = f"{live.base}/live/file/{rung}/index.m3u8"
    live.wait_media("file", 8)
    # framecrc lists every decoded frame; -v error makes any decode error visible on stderr.
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-t", "10", "-map", "0:v", "-f", "framecrc", "-"],
        capture_output=True, timeout=90, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    frames = [line for line in proc.stdout.splitlines() if line and not line.startswith("#")]
    assert len(frames) >= 10 * 30 * 0.95


def _segment_probe(live, feed: str, rendition: str, seq: int) -> dict:
    init = live.get(f"/live/{feed}/{rendition}/{playlist(live, feed, rendition).segment_map[0].uri}").content
    seg = live.get(f"/live/{feed}/{rendition}/{seq}.m4s")
    assert seg.status_code == 200
    return ffprobe_json(
        "-select_streams", "v", "-show_frames", "-read_intervals", "%+#1",
        "-show_entries", "frame=pts_time,key_frame,pict_type", "-", data=init + seg.content,
    )["frames"][0]


def test_every_segment_starts_with_a_keyframe_at_the_same_time_in_every_rung(live):
    live.wait_media("synth", 10)
    listed = {r.name: {s.uri: s for s in whole_segments(playlist(live, "synth", r.name))} for r in live.config.ladder.rungs}
    common = sorted(set.intersection(*(set(v) for v in listed.values())), key=lambda u: int(u.split(".")[0]))
    # The feed's first segment starts where its timeline began, mid-segment; of the rest, the
    # newest (the DVR window lists minutes back, from the archive).
    began = live.feeds()["synth"]["timeline_start"]
    common = [u for u in common if int(u.split(".")[0]) * live.config.segment_duration >= began][-live.config.live_window:]
    assert len(common) >= 3
    for uri in common:
        seq = int(uri.split(".")[0])
        firsts = {name: _segment_probe(live, "synth", name, seq) for name in listed}
        for name, frame in firsts.items():
            assert frame["key_frame"] == 1 and frame["pict_type"] == "I", (name, seq, frame)
        starts = {float(f["pts_time"]) for f in firsts.values()}
        assert len(starts) == 1, (seq, firsts)
        # Segment seq covers [seq*D, (seq+1)*D) of the feed's timeline.
        assert abs(starts.pop() - seq * live.config.segment_duration) < 1 / 30 + 1e-6
        durations = {listed[name][uri].duration for name in listed}
        assert len(durations) == 1


def test_program_date_times_rise_by_segment_durations(live):
    live.wait_media("synth", 10)
    for rung in live.config.ladder.rungs:
        # The newest live_window segments: the DVR window lists minutes back, and a paced
        # source more than 5 s behind on a starved machine re-anchors its capture clock, which
        # puts a date jump between two segments (known, docs/architecture.md).
        segs = whole_segments(playlist(live, "synth", rung.name))[-live.config.live_window:]
        assert len(segs) >= 3
        for a, b in zip(segs, segs[1:]):
            assert a.program_date_time is not None and b.program_date_time is not None
            step = b.program_date_time - a.program_date_time
            assert abs(step - timedelta(seconds=a.duration)) <= timedelta(milliseconds=1), (a.uri, b.uri, step)


def test_media_playlist_is_a_live_window(live):
    pl = playlist(live, "synth", "360p")
    assert not pl.is_endlist
    assert pl.target_duration == round(live.config.segment_duration)
    assert pl.is_independent_segments
    assert pl.segment_map and pl.segment_map[0].uri.startswith("init.mp4?v=")
    # every listed URI's MSN is its seq (RFC 8216 6.2.1: an MSN never changes)
    seqs = [int(s.uri.split(".")[0]) for s in pl.segments if s.uri]
    assert seqs == list(range(pl.media_sequence, pl.media_sequence + len(seqs)))
    assert len(seqs) <= policy_of(live.config).listed  # the DVR window, at most


def test_corrupt_feed_fails_alone_with_its_reason(live):
    live.wait_media("file", 6)
    feeds = live.feeds()
    broken = feeds["broken"]
    assert broken["state"] == "failed"
    assert "corrupt" in broken["reason"] or "invalid data" in broken["reason"]
    assert live.get("/live/broken/master.m3u8").status_code == 404
    for name in ("synth", "file"):
        assert feeds[name]["state"] == "live", feeds[name]
        assert live.get(f"/live/{name}/master.m3u8").status_code == 200


def test_cache_and_cors_headers(live):
    pl = playlist(live, "synth", "240p")
    for uri in (whole_segments(pl)[-1].uri, pl.segments[-1].parts[0].uri, pl.segment_map[0].uri):
        got = live.get(f"/live/synth/240p/{uri}")
        assert got.status_code == 200, uri
        assert "immutable" in got.headers["cache-control"], uri  # segments, parts, versioned init
        assert got.headers["access-control-allow-origin"] == "*"
    bare_init = live.get("/live/synth/240p/init.mp4")  # follows the current init: not immutable
    assert bare_init.status_code == 200 and "immutable" not in bare_init.headers["cache-control"]
    assert live.get("/live/synth/240p/init.mp4?v=000000000000").status_code == 404
    pl_resp = live.get("/live/synth/240p/index.m3u8")
    assert pl_resp.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "max-age=1" in pl_resp.headers["cache-control"]


@pytest.mark.parametrize("path,status", [
    ("/live/nosuchfeed/master.m3u8", 404),
    ("/live/synth/9999p/index.m3u8", 404),
    ("/live/synth/360p/99999999.m4s", 404),
    ("/live/synth/360p/12.ts", 400),
    ("/live/synth/360p/-1.m4s", 400),
    ("/live/synth/3%2e60p/index.m3u8", 400),
    ("/live/..%2f..%2fetc/master.m3u8", 400),  # decoded to extra separators: no feed
    ("/live/synth/..%2f..%2f..%2fetc%2fpasswd/init.mp4", 400),
    ("/live/%2e%2e/360p/1.m4s", 400),
])
def test_bad_requests_get_short_4xx_without_traces(live, path, status):
    r = live.get(path)
    assert r.status_code == status, (path, r.status_code, r.text)
    assert len(r.text) < 200 and "Traceback" not in r.text and "/" not in r.text.replace("not found", "")


def test_viewer_page_and_player_script(live):
    page = live.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/hls.min.js" in page.text and "master.m3u8" in page.text
    js = live.get("/static/hls.min.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert live.get("/static/../pyproject.toml").status_code == 404
    assert live.get("/healthz").status_code == 200
