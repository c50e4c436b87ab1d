"""Time-shift on the live pipeline, with real clients: a range of the running feed read by ffmpeg
and ffprobe over HTTP from the time-shift master URL (one near the live edge, one old enough that
only the archive has it, opened by the edge), a catch-up EVENT playlist that grows, 400 and 404."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode, urljoin

import m3u8
import pytest
import ray

from orbitcast.delivery.playlists import iso_ms

pytestmark = pytest.mark.e2e
FEED = "synth"


def master_url(live, start: datetime, end: datetime | None = None) -> str:
    params = {"start": iso_ms(start)} | ({"end": iso_ms(end)} if end is not None else {})
    return f"{live.base}/live/{FEED}/master.m3u8?{urlencode(params)}"


def variants(live, url: str) -> dict[str, tuple[str, m3u8.M3U8, str]]:
    """rendition -> (URL, parsed playlist, text) of every child of a time-shift master."""
    r = live.get(url.removeprefix(live.base))
    assert r.status_code == 200, r.text
    out = {}
    for p in m3u8.loads(r.text).playlists:
        child = urljoin(url, p.uri)
        assert "start=" in p.uri  # every child URI carries the window
        text = live.get(child.removeprefix(live.base)).text
        out[p.uri.split("/")[0]] = (child, m3u8.loads(text), text)
    return out


def decode(url: str) -> tuple[float, int]:
    """(duration ffprobe reports, video frames ffmpeg decodes without an error) of `url`."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries", "format=duration", url],
                           capture_output=True, timeout=90, text=True, check=True)
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-map", "0:v:0", "-f", "framecrc", "-"],
                          capture_output=True, timeout=120, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    frames = [line for line in proc.stdout.splitlines() if line and not line.startswith("#")]
    return float(json.loads(probe.stdout)["format"]["duration"]), len(frames)


def check_range(live, start: datetime, end: datetime) -> None:
    d = live.config.segment_duration
    url = master_url(live, start, end)
    found = variants(live, url)
    assert sorted(found) == sorted(r.name for r in live.config.ladder.rungs)  # every rung
    for rendition, (child, pl, text) in found.items():
        assert pl.playlist_type == "vod" and pl.is_endlist and "#EXT-X-GAP" not in text
        dates = [s.current_program_date_time for s in pl.segments]
        # exactly the segments whose media overlaps [start, end)
        assert dates[0] <= start < dates[0] + timedelta(seconds=pl.segments[0].duration)
        assert dates[-1] < end <= dates[-1] + timedelta(seconds=pl.segments[-1].duration) + timedelta(milliseconds=5)
        listed = sum(s.duration for s in pl.segments)
        assert abs(listed - (end - start).total_seconds()) <= d + 0.05
        # a media playlist plays on its own (ffmpeg reads it, fetches init and segments, decodes)
        duration, frames = decode(child)
        assert abs(duration - (end - start).total_seconds()) <= d + 0.1, (rendition, duration)
        assert frames >= 30 * (listed - 0.2)
    # and the master URL, as a player gets it
    duration, frames = decode(url)
    assert abs(duration - (end - start).total_seconds()) <= d + 0.1


def test_the_last_seconds_play_from_the_time_shift_master(live):
    # 20 s in, so that this range and the archive-only one below (the feed's first seconds)
    # never name the same segments: HAProxy's cache would answer the second asker
    live.wait_media(FEED, 20)
    start, end = recent_media(live, 6)
    check_range(live, start, end)


def recent_media(live, seconds: int) -> tuple[datetime, datetime]:
    """A range of `seconds` just behind the live edge: on a starved machine a paced source falls
    behind the wall clock (and catches up later), so the newest media may be dated seconds
    before now. Taken from the live playlist's dates, the range is one a viewer could have
    watched, so the time-shift must give exactly it. A source re-anchored after the pipeline's
    start (CI once: a 7.8 s jump 7 s in) leaves no such run until the live edge has grown
    one past the jump, so this waits for it."""
    deadline = time.monotonic() + 4 * seconds * live.config.segment_duration
    while True:
        pl = m3u8.loads(live.get(f"/live/{FEED}/360p/index.m3u8").text)
        segs = [(s.current_program_date_time, s.duration) for s in pl.segments if s.uri and s.uri.count(".") == 1]
        starts = range(len(segs) - 2 - seconds, -1, -1)  # the newest run first, two segments back
        try:
            return continuous(segs, seconds, starts, "in the live playlist")
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(live.config.segment_duration)


def early_media(live, seconds: int) -> tuple[datetime, datetime]:
    """A range of `seconds` among the feed's first: the first continuous run the archive lists.
    A paced source more than 5 s late on the starved cores of the pipeline's start is
    re-anchored to the wall clock (orbitcast/media/source.py), so its first dates may jump."""
    first = datetime.fromtimestamp(live.feeds()[FEED]["timeline_start"], tz=timezone.utc)
    _, pl, _ = variants(live, master_url(live, first, first + timedelta(seconds=30)))["360p"]
    segs = [(s.current_program_date_time, s.duration) for s in pl.segments]
    return continuous(segs, seconds, range(len(segs) - seconds), "among the feed's first 30 s")


def continuous(segs: list[tuple[datetime, float]], seconds: int, starts: range, where: str) -> tuple[datetime, datetime]:
    for i in starts:
        run = segs[i:i + seconds + 1]
        if all(abs((b[0] - a[0]).total_seconds() - a[1]) < 0.05 for a, b in zip(run, run[1:])):
            offset = timedelta(seconds=0.4)  # inside a segment, not on its edge
            return run[0][0] + offset, run[-1][0] + offset
    raise AssertionError(f"no {seconds} s of continuous media {where}: {segs}")


def test_a_range_only_the_archive_has_plays(live):
    keep = 2 * live.config.live_window * live.config.segment_duration  # what the live window still holds
    live.wait_media(FEED, keep + 30)
    # the feed's first seconds: long out of the live window, and asked for by no earlier test
    start, end = early_media(live, 6)
    assert end + timedelta(seconds=keep) < datetime.now(timezone.utc)
    before = ray.get(live.pipeline.edge.stats.remote())["archive"]
    check_range(live, start, end)
    # the segments came out of sealed blobs, opened by the edge (each rung's six or seven)
    after = ray.get(live.pipeline.edge.stats.remote())["archive"]
    assert after.get("opened", 0) - before.get("opened", 0) >= 2 * 6, (before, after)


def test_catch_up_grows_to_the_live_edge(live):
    live.wait_media(FEED, 10)
    start, _ = recent_media(live, 8)  # from the live edge's dates, not now (see recent_media)
    path = f"/live/{FEED}/360p/index.m3u8?{urlencode({'start': iso_ms(start)})}"
    first = live.get(path)
    assert first.status_code == 200
    pl = m3u8.loads(first.text)
    assert pl.playlist_type == "event" and not pl.is_endlist
    time.sleep(3 * live.config.segment_duration)
    grown = m3u8.loads(live.get(path).text)
    before, after = [s.uri for s in pl.segments], [s.uri for s in grown.segments]
    assert len(after) >= len(before) + 2 and after[:len(before)] == before
    assert grown.segments[0].current_program_date_time <= start


def test_bad_and_empty_ranges(live):
    live.wait_media(FEED, 4)
    now = datetime.now(timezone.utc)
    cases = [
        ({"start": "last tuesday"}, 400),
        ({"start": iso_ms(now - timedelta(seconds=5)), "end": iso_ms(now - timedelta(seconds=10))}, 400),
        ({"end": iso_ms(now)}, 400),
        ({"start": iso_ms(now + timedelta(minutes=5))}, 400),
        ({"start": iso_ms(now - timedelta(days=3)), "end": iso_ms(now)}, 400),  # longer than the span served
        ({"start": "2001-01-01T00:00:00Z", "end": "2001-01-01T00:00:10Z"}, 404),  # no media then
    ]
    for params, status in cases:
        r = live.get(f"/live/{FEED}/master.m3u8?{urlencode(params)}")
        assert r.status_code == status, (params, r.text)
        assert len(r.text) < 200 and "Traceback" not in r.text


def test_the_packagers_upkeep_folds_the_catalog_while_the_feed_runs(live):
    """Each packager compacts its catalog every archive.maintain_every_s: flush files become
    hour files, no row is lost, and time-shift lists what the catalog holds."""
    packager = live.pipeline.packagers[FEED]

    def catalogued() -> set[int]:
        return {r["seq"] for r in ray.get(packager.catalog_rows.remote()) if r["rendition"] == "360p"}

    last = ray.get(packager.archive_upkeep.remote()).get("at", 0.0)
    before = catalogued()
    deadline = time.monotonic() + live.config.archive.maintain_every_s + 60
    while ray.get(packager.archive_upkeep.remote()).get("at", 0.0) <= last:  # the next round
        assert time.monotonic() < deadline, "no upkeep round ran"
        time.sleep(1)
    report = ray.get(packager.archive_upkeep.remote())
    assert report["removed_segments"] == 0 and report["files_merged"] > 0  # no retention configured
    assert list((Path(live.config.store) / "catalog" / f"feed={FEED}").glob("date=*/hour-*.parquet"))
    after = catalogued()
    assert before <= after  # folding lost no row
    first = datetime.fromtimestamp(live.feeds()[FEED]["timeline_start"], tz=timezone.utc)
    end = datetime.now(timezone.utc) - timedelta(seconds=30)  # all of it in the catalog by now
    r = live.get(f"/live/{FEED}/360p/index.m3u8?{urlencode({'start': iso_ms(first), 'end': iso_ms(end)})}")
    assert r.status_code == 200
    pl = m3u8.loads(r.text)
    listed = [int(s.uri.split(".")[0]) for s in pl.segments if not s.gap_tag]
    gaps = [int(s.uri.split(".")[0]) for s in pl.segments if s.gap_tag]
    assert listed and set(listed) <= after and not set(gaps) & after
    assert set(range(listed[0], listed[-1] + 1)) & after == set(listed)  # every catalogued seq in the range


def test_the_live_playlist_lists_a_dvr_window_older_segments_from_the_archive(live, tmp_path):
    """`dvr_window`: the live playlist lists back further than the replica keeps bytes; a
    player that seeks back to a segment older than that gets it (opened from the archive) and
    it decodes after its init segment."""
    keep = 2 * live.config.live_window  # what the window keeps in memory (policy_of)
    d = live.config.segment_duration
    live.wait_media(FEED, (keep + 6) * d, timeout=180)
    path = f"/live/{FEED}/360p/index.m3u8"
    r = live.get(path)
    assert r.status_code == 200
    pl = m3u8.loads(r.text)
    complete = [s for s in pl.segments if s.uri and not s.gap_tag]
    assert len(pl.segments) > keep and len(complete) > keep  # past what the window holds
    oldest = complete[-(keep + 2)]  # one the replica no longer holds (keep counts back from the last)
    got = live.get(f"/live/{FEED}/360p/{oldest.uri}")
    assert got.status_code == 200 and "immutable" in got.headers["cache-control"]
    init = live.get(urljoin(path, pl.segment_map[0].uri))
    assert init.status_code == 200
    clip = tmp_path / "oldest.mp4"
    clip.write_bytes(init.content + got.content)
    _, frames = decode(str(clip))  # no decode error
    assert frames > 0
    # the same segment as a time-shift range names it: the archive and the DVR listing agree
    start = oldest.current_program_date_time
    shifted = m3u8.loads(live.get(f"{path}?{urlencode({'start': iso_ms(start), 'end': iso_ms(start + timedelta(seconds=d))})}").text)
    assert oldest.uri in [s.uri for s in shifted.segments]
