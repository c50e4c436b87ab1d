"""A hole of whole segments in the feed's timeline (media lost upstream: a camera or relay
that dropped frames for seconds, its timestamps going on with the wall clock): the
transcoder's output on both sides of it, decoded back with PyAV."""

from __future__ import annotations

import dataclasses
import io

import av
import pytest

from orbitcast.media.fmp4 import fragment_duration, tracks_of
from orbitcast.media.source import Source
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.segment import Part, Segment
from tests.unit.test_transcode import CLOCK, LADDER, LAVFI

D = 1.0
PART = 0.2
SKIP = 5.0


def transcode_with_hole(at: float, seconds: float = 8.0) -> tuple[LiveTranscoder, list[Part | Segment]]:
    """The lavfi source through a transcoder, every unit from media time `at` on moved SKIP
    seconds ahead, dates with it, as a source that lost SKIP seconds of media delivers it."""
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: CLOCK)
    tr = LiveTranscoder("feed", LADDER, D, PART, src.open())
    out: list[Part | Segment] = []
    batch = []
    for u in src.units():
        if u.time >= at:
            u = dataclasses.replace(u, time=round((u.time + SKIP) * 90000) / 90000, capture=u.capture + SKIP)
        batch.append(u)
        if len(batch) == 8:
            out += tr.push(batch)
            batch = []
        if u.time >= seconds + SKIP:
            break
    out += tr.push(batch) + tr.flush()
    src.close()
    return tr, out


def decoded(init: bytes, seg: Segment) -> tuple[list[av.VideoFrame], list[av.AudioFrame]]:
    with av.open(io.BytesIO(init + seg.data)) as c:
        video = list(c.decode(video=0))
    with av.open(io.BytesIO(init + seg.data)) as c:
        audio = list(c.decode(audio=0))
    return video, audio


def seconds_of(frame: av.frame.Frame) -> float:
    return float(frame.pts * frame.time_base)


@pytest.fixture(scope="module", params=[4.0, 3.5], ids=["on-a-boundary", "mid-segment"])
def hole(request: pytest.FixtureRequest) -> tuple[float, LiveTranscoder, list[Part | Segment]]:
    return (request.param, *transcode_with_hole(request.param))


def test_no_part_spans_the_hole(hole) -> None:
    _at, tr, out = hole
    for name, init in tr.init_segments.items():
        video = next(t for t in tracks_of(init) if t.handler == "vide")
        for p in (x for x in out if isinstance(x, Part) and x.rendition == name):
            # a picture timed by the next one would last the whole hole
            assert fragment_duration(p.data, video.track_id) / video.timescale <= PART + 1e-6, p.name
            assert p.duration <= PART + 1e-6, p.name


def test_the_seqs_of_the_hole_are_not_made_and_the_rest_once_each(hole) -> None:
    at, _tr, out = hole
    for name in (r.name for r in LADDER.rungs):
        seqs = [s.seq for s in out if isinstance(s, Segment) and s.rendition == name]
        last_before = int(at // D) - (1 if at % D == 0 else 0)
        first_after = int((at + SKIP) // D)
        assert seqs == [*range(0, last_before + 1), *range(first_after, seqs[-1] + 1)], (name, seqs)


def test_segments_around_the_hole_end_at_their_last_picture_and_start_with_a_keyframe(hole) -> None:
    at, tr, out = hole
    for name, init in tr.init_segments.items():
        segs = sorted((s for s in out if isinstance(s, Segment) and s.rendition == name), key=lambda s: s.seq)
        i = next(i for i, (a, b) in enumerate(zip(segs, segs[1:])) if b.seq > a.seq + 1)
        before, after = segs[i], segs[i + 1]
        pics, sound = decoded(init, before)
        assert before.duration == pytest.approx(seconds_of(pics[-1]) + 1 / 30 - before.start, abs=1e-3)
        assert before.start + before.duration == pytest.approx(min(at, (before.seq + 1) * D), abs=1e-3)
        assert seconds_of(sound[-1]) < at  # no silence for the hole in it
        pics, sound = decoded(init, after)
        assert pics[0].key_frame and seconds_of(pics[0]) == pytest.approx(at + SKIP, abs=1e-3)
        assert seconds_of(sound[0]) >= at + SKIP - 1e-3, "its sound starts with its pictures"
        assert after.program_date_time.timestamp() - after.start == pytest.approx(
            before.program_date_time.timestamp() - before.start, abs=1e-3), "one date rule on both sides"


def test_the_stream_goes_on_after_the_hole_with_the_same_init_segment(hole) -> None:
    _at, tr, out = hole
    for name, init in tr.init_segments.items():
        segs = sorted((s for s in out if isinstance(s, Segment) and s.rendition == name), key=lambda s: s.seq)
        whole = init + b"".join(s.data for s in segs)
        with av.open(io.BytesIO(whole)) as c:
            times = [seconds_of(f) for f in c.decode(video=0)]
        assert len(times) == sum(len(decoded(init, s)[0]) for s in segs)
        assert times == sorted(times)
