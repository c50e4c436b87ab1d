"""The live pipeline on local Ray: two feeds run side by side for at least 20 s."""

from __future__ import annotations

import time

import m3u8
import pytest
import ray

from orbitcast.catalog import SCHEMA, Catalog
from orbitcast.media.source import REANCHOR_PACED_AFTER
from orbitcast.segment import Segment, sha256_hex
from orbitcast.store import Store

from tests.hls import whole_segments

pytestmark = pytest.mark.ray


def test_two_feeds_run_for_20_seconds(live):
    live.wait_media("synth", 22, timeout=180)
    live.wait_media("file", 22, timeout=180)
    assert time.monotonic() - live.started >= 20
    first = live.feeds()
    time.sleep(6.0)
    feeds = live.feeds()
    for name in ("synth", "file"):
        f = feeds[name]
        assert f["state"] == "live" and f["retries"] == 0, f
        # Published media keeps pace with the wall clock: 6 s later, about 6 s more of it, and
        # the newest segment is recent. A paced source that its transcoder could not keep up
        # with (starved cores, e.g. when the test runs late in a session) lags up to 5 s before
        # it is re-anchored (REANCHOR_PACED_AFTER), so recent means within that and a segment.
        made = (f["last_segment"]["seq"] - first[name]["last_segment"]["seq"]) * live.config.segment_duration
        assert made >= 4.0, (first[name]["last_segment"], f["last_segment"])
        assert f["latency"] is not None and 0 <= f["latency"] < REANCHOR_PACED_AFTER + 2 * live.config.segment_duration, f
        # the encoders as the transcoder reports them: the ladder's preset, and how far behind the
        # wall clock the newest media it encoded was (the overload steps' measure, overload.py)
        enc = f["encoders"]
        assert enc["preset"] == live.config.ladder.preset and enc["overload"] is not None, enc
        assert 0 <= enc["overload"]["behind_s"] < REANCHOR_PACED_AFTER + 2 * live.config.segment_duration, enc
        assert set(enc["faster"]) <= {r.name for r in live.config.ladder.rungs}, enc
        for r in live.config.ladder.rungs:
            pl = m3u8.loads(live.get(f"/live/{name}/{r.name}/index.m3u8").text)
            listed = [s for s in pl.segments if s.uri]
            seqs = [int(s.uri.split(".")[0]) for s in listed]
            assert seqs == sorted(set(seqs)) and seqs[-1] - seqs[0] == len(seqs) - 1
            assert not any(s.gap_tag for s in listed), "no segment lost in 20 s"
            # a jump in the dates between adjacent segments is one the feed reported: its input
            # fell behind and its capture clock was set to the wall clock again (source.py).
            # Read before the newest segments, which list their parts: the m3u8 package adds the
            # parts' durations to the dates it derives for the segments after them.
            dated = listed[:next((i for i, x in enumerate(listed) if x.parts), len(listed))]
            jumps = [(a.uri, round((b.current_program_date_time - a.current_program_date_time).total_seconds()
                                   - a.duration, 3))
                     for a, b in zip(dated, dated[1:])
                     if abs((b.current_program_date_time - a.current_program_date_time).total_seconds() - a.duration) > 0.05]
            # (the feed's health reaches /api/feeds every second or so: asked again until then)
            deadline = time.monotonic() + 5
            while (dates := live.feeds()[name]["input"]["dates"])["reanchors"] < len(jumps) \
                    and time.monotonic() < deadline:
                time.sleep(0.25)
            assert len(jumps) <= dates["reanchors"], (name, r.name, jumps, dates)
            assert all(jump > 0 for _, jump in jumps), jumps  # ahead, never back


def test_file_feed_loops_on_one_timeline(live):
    # The clip is 7 s long: past 14 s of media it has looped at least twice.
    live.wait_media("file", 16, timeout=120)
    text = live.get("/live/file/360p/index.m3u8").text
    pl = m3u8.loads(text)
    assert "#EXT-X-DISCONTINUITY" not in text and "#EXT-X-GAP" not in text
    # The timeline starts at the wall clock, off the segment grid: the feed's first segment is
    # shorter (listed while the test runs early in a session); every other is whole.
    first = int(live.feeds()["file"]["timeline_start"] // live.config.segment_duration)
    whole = [s for s in whole_segments(pl) if int(s.uri.split(".")[0]) != first]
    assert whole and all(abs(s.duration - live.config.segment_duration) < 0.05 for s in whole), \
        [(s.uri, s.duration) for s in whole]


def test_catalog_rows_match_the_served_bytes(live):
    live.wait_media("synth", 8)
    rows = live.pipeline.catalog_rows("synth")
    # through the catalog's reader: the packager's upkeep compacts the files while we read
    table = Catalog(Store(live.config.store)).read()
    assert set(SCHEMA.names) <= set(table.schema.names)
    assert table.num_rows > 0
    served = whole_segments(m3u8.loads(live.get("/live/synth/360p/index.m3u8").text))[0]
    seq = int(served.uri.split(".")[0])
    data = live.get(f"/live/synth/360p/{served.uri}").content
    row = next(r for r in rows if r["feed"] == "synth" and r["rendition"] == "360p" and r["seq"] == seq)
    assert row["digest"] == sha256_hex(data)
    assert row["bytes"] == len(data)
    assert abs(row["duration"] - served.duration) < 1e-3
    assert abs(row["program_date_time"].timestamp() - served.program_date_time.timestamp()) < 0.002


def test_a_second_version_of_a_certified_seq_is_not_sent(live):
    """A member that takes a feed over makes the unfinished seqs again; where the dead member's
    version of one is certified already, the packager keeps to it (the log holds one leaf per
    seq): the new version is neither catalogued nor sent, so no viewer is served bytes that no
    proof covers."""
    live.wait_media("synth", 6)
    packager = live.pipeline.packagers["synth"]
    served = whole_segments(m3u8.loads(live.get("/live/synth/360p/index.m3u8").text))[-1]
    seq = int(served.uri.split(".")[0])
    data = live.get(f"/live/synth/360p/{served.uri}").content
    rows = ray.get(packager.catalog_rows.remote())
    row = next(r for r in rows if r["feed"] == "synth" and r["rendition"] == "360p" and r["seq"] == seq)
    again = Segment("synth", "360p", seq, row["start"], row["duration"], row["program_date_time"], data + b"\0")
    before = ray.get(packager.stats.remote())["counters"].get("superseded", 0)
    ray.get(packager.publish.remote({}, [again]))
    assert ray.get(packager.stats.remote())["counters"].get("superseded", 0) == before + 1
    rows = [r for r in ray.get(packager.catalog_rows.remote())
            if r["feed"] == "synth" and r["rendition"] == "360p" and r["seq"] == seq]
    assert [r["digest"] for r in rows] == [sha256_hex(data)]
    assert live.get(f"/live/synth/360p/{served.uri}").content == data
