"""The live transcoder following a ladder that changes (the energy plan, docs/energy.md): a rung
dropped and brought back at segment boundaries, a lower frame rate. Driven by a real lavfi
source, checked by decoding the CMAF output with PyAV."""

from __future__ import annotations

import io

import av
import pytest

from orbitcast.media.source import Source
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.segment import Part, Segment
from tests.unit.test_transcode import CLOCK, D, LADDER, LAVFI, PART

FPS = 30


def run_with_changes(changes: dict[float, tuple[tuple[str, ...] | None, float | None]], seconds: float = 12.0):
    """Transcode `seconds` of the lavfi source, asking for a ladder (rungs, fps) at each media time."""
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: CLOCK)
    streams = src.open()
    tr = LiveTranscoder("feed", LADDER, D, PART, streams)
    out: list[Part | Segment] = []
    inits: list[bytes] = []
    pending = []
    todo = sorted(changes.items())
    for unit in src.units():
        pending.append(unit)
        while todo and unit.time >= todo[0][0]:
            tr.set_ladder(*todo.pop(0)[1])
        if len(pending) >= 8:
            out += tr.push(pending)
            pending = []
            if "hi" in tr.init_segments:
                inits.append(tr.init_segments["hi"])
        if unit.time >= seconds:
            break
    out += tr.push(pending)
    out += tr.flush()
    src.end_session()
    return tr, out, inits


def segments(out, rung: str) -> list[Segment]:
    return [x for x in out if isinstance(x, Segment) and x.rendition == rung]


def frames(init: bytes, seg: Segment) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(init + seg.data)) as c:
        return list(c.decode(video=0))


def audio_start(init: bytes, seg: Segment) -> float:
    with av.open(io.BytesIO(init + seg.data)) as c:
        first = next(c.demux(audio=0))
        return float(first.pts * first.time_base)


@pytest.fixture(scope="module")
def dropped() -> tuple[LiveTranscoder, list, list[bytes]]:
    # asked for mid-seq 1 (hi dropped from seq 2 on), back mid-seq 4 (hi again from seq 5)
    return run_with_changes({2.7: (("lo",), None), 8.7: (None, None)})

def audio_holes(mp4: bytes) -> list[tuple[float, float]]:
    """(where, how long) of every break in the audio track's samples of an fMP4 stream."""
    with av.open(io.BytesIO(mp4)) as c:
        a = c.streams.audio[0]
        pkts = [(float(p.pts * a.time_base), float(p.duration * a.time_base))
                for p in c.demux(a) if p.pts is not None]
    return [(t0 + d0, t1 - t0 - d0) for (t0, d0), (t1, _) in zip(pkts, pkts[1:])
            if abs(t1 - t0 - d0) > 1e-3]


def test_a_dropped_rung_stops_at_the_boundary_and_comes_back_at_one(dropped) -> None:
    _tr, out, _ = dropped
    lo = [s.seq for s in segments(out, "lo")]
    hi = [s.seq for s in segments(out, "hi")]
    assert lo == list(range(lo[0], lo[-1] + 1)), "the rung kept on never stops, each seq once"
    # asked for at 2.7 s (in seq 1): hi stops after seq 1; asked back at 8.7 s (in seq 4): from seq 5
    assert hi == [0, 1, *range(5, lo[-1] + 1)]


def test_the_segment_before_a_drop_is_whole_and_the_one_after_a_restore_starts_with_a_keyframe(dropped) -> None:
    tr, out, _ = dropped
    hi_init, lo_init = tr.init_segments["hi"], tr.init_segments["lo"]
    hi = {s.seq: s for s in segments(out, "hi")}
    lo = {s.seq: s for s in segments(out, "lo")}
    # the last segment before the drop covers its whole span, as the rung kept on has it
    assert hi[1].duration == pytest.approx(lo[1].duration, abs=1e-3) == pytest.approx(D, abs=1e-3)
    assert len(frames(hi_init, hi[1])) == len(frames(lo_init, lo[1])) == D * FPS
    back = hi[5]
    assert back.start == pytest.approx(lo[5].start, abs=1e-6), "aligned with the other rungs"
    pics = frames(hi_init, back)
    assert pics[0].key_frame and len(pics) == len(frames(lo_init, lo[5]))
    # its sound starts with its pictures, not in the segment before (which this rung lacks)
    assert audio_start(hi_init, back) >= back.start - 0.001


def test_a_rung_brought_back_has_the_same_init_segment(dropped) -> None:
    _tr, _out, inits = dropped
    assert len(set(inits)) == 1, "players keep the init they have (one EXT-X-MAP)"


def test_parts_say_the_ladder_of_their_seq(dropped) -> None:
    _tr, out, _ = dropped
    hi = {s.seq for s in segments(out, "hi")}
    for p in (x for x in out if isinstance(x, Part)):
        assert p.ladder == (("hi", "lo") if p.seq in hi else ("lo",)), p.name


def test_published_through_goes_on_while_a_rung_is_dropped(dropped) -> None:
    tr, out, _ = dropped
    assert tr.published_through == max(s.seq for s in segments(out, "lo"))


def test_a_lower_frame_rate_from_the_next_segment() -> None:
    tr, out, _ = run_with_changes({2.7: (None, 15)}, seconds=8.0)
    lo = segments(out, "lo")
    init = tr.init_segments["lo"]
    whole = [s for s in lo if s.duration == pytest.approx(D, abs=0.05)]
    rates = [len(frames(init, s)) / s.duration for s in whole]
    assert rates[0] == pytest.approx(FPS, abs=1), "before the change"
    assert rates[-1] == pytest.approx(15, abs=1), "after it"
    assert all(p.ladder == ("hi", "lo") for p in out if isinstance(p, Part))


def test_unknown_or_empty_ladders_are_refused() -> None:
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: CLOCK)
    tr = LiveTranscoder("feed", LADDER, D, PART, src.open())
    with pytest.raises(ValueError, match="not in the ladder"):
        tr.set_ladder(("hi", "4k"))
    with pytest.raises(ValueError, match="at least one"):
        tr.set_ladder(())
    src.end_session()


def test_a_ladder_asked_for_before_the_first_picture_is_the_first_one() -> None:
    tr, out, _ = run_with_changes({0.0: (("lo",), None)}, seconds=3.0)
    assert {x.rendition for x in out} == {"lo"}
    assert tr.ladder_now == ("lo",) and set(tr.init_segments) == {"lo"}


def test_a_faster_preset_from_the_next_segment_keeps_the_init_segment() -> None:
    """The plan's first step: the low rung on a faster preset. Its stream headers stay the
    base preset's (x264.py), so players keep the init they hold."""
    base = LADDER.model_copy(update={"preset": "veryfast"})
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: CLOCK)
    tr = LiveTranscoder("feed", base, D, PART, src.open())
    out: list[Part | Segment] = []
    inits: list[bytes] = []
    asked = False
    for unit in src.units():
        if unit.time >= 2.7 and not asked:
            tr.set_ladder(None, None, fast=("lo",), faster_preset="ultrafast")
            asked = True
        out += tr.push([unit])
        if "lo" in tr.init_segments:
            inits.append(tr.init_segments["lo"])
        if unit.time >= 7.0:
            break
    out += tr.flush()
    src.end_session()
    assert tr.faster_now == {"lo": "ultrafast"}
    assert len(set(inits)) == 1, "the same init segment before and after"
    lo = segments(out, "lo")
    assert [s.seq for s in lo] == list(range(lo[0].seq, lo[-1].seq + 1)), "each seq once"
    init = tr.init_segments["lo"]
    for seg in lo:  # every segment decodes with the one init, each from a keyframe
        pics = frames(init, seg)
        assert pics and pics[0].key_frame
    # the sound goes on across the change: the new encoder's first segment carries what the
    # old one's last was not given
    assert audio_holes(init + b"".join(s.data for s in lo)) == []


def test_a_faster_preset_that_would_change_the_headers_is_not_used() -> None:
    base = LADDER.model_copy(update={"preset": "medium"})  # psy and 3 references: other headers
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: CLOCK)
    tr = LiveTranscoder("feed", base, D, PART, src.open())
    tr.set_ladder(None, None, fast=("lo",), faster_preset="ultrafast")
    for unit in src.units():
        tr.push([unit])
        if unit.time >= 2.5:
            break
    src.end_session()
    assert tr.faster_now == {} and tr.ladder_now == ("hi", "lo")
