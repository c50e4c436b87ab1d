"""A live ladder whose encoders cannot keep pace steps to faster x264 presets and back
(orbitcast/media/overload.py): the rule on its own, then the live transcoder driven by a real
lavfi source with a wall clock the test moves, checked by decoding its CMAF output."""

from __future__ import annotations

import io

import av

from orbitcast.config import LadderConfig, OrbitcastConfig
from orbitcast.media.overload import OverloadSteps, faster_of, steps_for
from orbitcast.media.source import Source
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.segment import Part, Segment
from tests.unit.test_transcode import CLOCK, D, LADDER, LAVFI, PART
from tests.unit.test_transcode_ladder import audio_holes, frames, segments

STEPS = ("superfast", "ultrafast")


def test_the_steps_are_the_configured_presets_faster_than_the_ladders_slowest_first() -> None:
    assert steps_for("veryfast", ("ultrafast", "superfast")) == STEPS
    assert steps_for("veryfast", ("superfast", "medium")) == ("superfast",)
    assert steps_for("ultrafast", STEPS) == ()
    assert steps_for("no-such-preset", STEPS) == ()
    assert faster_of("superfast", "ultrafast") == "ultrafast" and faster_of(None, "superfast") == "superfast"
    assert faster_of(None, None) is None


def test_a_lag_over_the_limit_steps_up_once_per_settling_time_and_no_further_than_the_last() -> None:
    s = OverloadSteps(STEPS, behind=1.0, calm=30.0)
    s.observe(0.3)
    assert s.at_boundary(0.0) is None  # keeping pace
    s.observe(1.5)
    assert s.at_boundary(1.0) == "superfast"
    s.observe(2.0)
    assert s.at_boundary(2.0) == "superfast", "a new preset gets time to drain the backlog"
    s.observe(2.5)
    assert s.at_boundary(5.0) == "ultrafast"
    s.observe(3.0)
    assert s.at_boundary(10.0) == "ultrafast", "no step beyond the last"
    assert s.status()["steps_up"] == 2 and s.status()["behind_s"] == 3.0


def test_after_a_calm_period_it_steps_back_one_preset_at_a_time() -> None:
    s = OverloadSteps(STEPS, behind=1.0, calm=10.0)
    s.observe(1.5)
    s.at_boundary(0.0)
    s.observe(1.5)
    s.at_boundary(5.0)
    assert s.preset == "ultrafast"
    t = 5.0
    while t < 14.0:  # still lagging over half the limit: no step back, and the calm starts later
        t += 1.0
        s.observe(0.7)
        assert s.at_boundary(t) == "ultrafast"
    while t < 23.0:
        t += 1.0
        s.observe(0.2)
        assert s.at_boundary(t) == "ultrafast", t
    t += 1.0
    s.observe(0.2)
    assert s.at_boundary(t) == "superfast"  # 10 s after the last lag
    for _ in range(9):
        t += 1.0
        s.observe(0.2)
        assert s.at_boundary(t) == "superfast"
    t += 1.0
    s.observe(0.2)
    assert s.at_boundary(t) is None


def test_lagging_again_soon_after_a_step_back_doubles_the_calm_needed() -> None:
    s = OverloadSteps(("superfast",), behind=1.0, calm=10.0)
    s.observe(2.0)
    s.at_boundary(0.0)
    s.observe(0.1)
    assert s.at_boundary(10.0) is None  # stepped back
    s.observe(2.0)
    assert s.at_boundary(15.0) == "superfast"
    assert s.calm == 20.0
    s.observe(0.1)
    assert s.at_boundary(34.0) == "superfast"
    s.observe(0.1)
    assert s.at_boundary(35.0) is None


def test_the_default_config_steps_through_superfast_and_ultrafast() -> None:
    cfg = OrbitcastConfig()
    assert steps_for(cfg.ladder.preset, cfg.ladder.overload.presets) == STEPS
    off = LadderConfig.model_validate({"overload": {"presets": []}})
    assert steps_for(off.preset, off.overload.presets) == ()


def run_lagging(lag_at) -> tuple[LiveTranscoder, list[Part | Segment], dict[str, set[bytes]], dict[int, dict]]:
    """Transcode 16 s of the lavfi source (veryfast, 2 s segments); the wall clock stands
    `lag_at(media time)` behind each unit's capture. Returns the transcoder, its output, the init segments seen per
    rung and the rungs' presets at each seq."""
    base = LADDER.model_copy(update={"preset": "veryfast"})
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: CLOCK)
    now = {"t": CLOCK}
    tr = LiveTranscoder("feed", base, D, PART, src.open(), overload=OverloadSteps(STEPS, behind=1.0, calm=2.0),
                        clock=lambda: now["t"])
    out: list[Part | Segment] = []
    inits: dict[str, set[bytes]] = {"hi": set(), "lo": set()}
    presets: dict[int, dict] = {}
    for unit in src.units():
        now["t"] = unit.capture + lag_at(unit.time)
        out += tr.push([unit])
        presets.setdefault(int(unit.time // D), dict(tr.faster_now))
        for rung, init in tr.init_segments.items():
            inits[rung].add(init)
        if unit.time >= 16.0:
            break
    out += tr.flush()
    src.end_session()
    return tr, out, inits, presets


def test_a_transcoder_behind_the_wall_clock_encodes_faster_from_the_next_segment_and_comes_back() -> None:
    # behind by 2 s from 2 s to 10 s of media (seqs 1-4), keeping pace before and after: a step
    # at the boundary after the first lagging segment, the next once the first has settled (4 s),
    # one back at each boundary the calm (2 s) has passed
    tr, out, inits, presets = run_lagging(lambda t: 2.0 if 2.0 <= t < 10.0 else 0.1)
    assert presets[0] == presets[1] == {}
    assert {"superfast", "ultrafast"} <= {p for at in presets.values() for p in at.values()}, presets
    assert all(set(at) in (set(), {"hi", "lo"}) for at in presets.values()), "every rung steps at once"
    assert presets[4] == {"hi": "ultrafast", "lo": "ultrafast"}, presets
    assert presets[6] == {"hi": "superfast", "lo": "superfast"}, presets
    assert tr.faster_now == {} and presets[7] == {}, "back on the ladder's preset after the calm"
    assert tr.encoder_status["overload"]["steps_up"] == 2
    for rung in ("hi", "lo"):
        assert len(inits[rung]) == 1, "one init segment throughout: players keep theirs"
        segs = segments(out, rung)
        assert [s.seq for s in segs] == list(range(segs[0].seq, segs[-1].seq + 1)), "each seq once"
        init = next(iter(inits[rung]))
        for seg in segs:  # each decodes with that init, from a keyframe, one segment long
            pics = frames(init, seg)
            assert pics and pics[0].key_frame
            assert abs(seg.duration - D) < 0.05 or seg in (segs[0], segs[-1]), (seg.seq, seg.duration)
        whole = next(iter(inits[rung])) + b"".join(s.data for s in segs)
        with av.open(io.BytesIO(whole)) as c:  # one stream across the preset changes
            assert len(list(c.decode(video=0))) == sum(len(frames(init, s)) for s in segs)
        # and one sound: a hole in the audio is a stall in hls.js (bufferSeekOverHole)
        assert audio_holes(whole) == [], rung



def test_a_transcoder_that_keeps_pace_stays_on_its_preset() -> None:
    tr, _, _, presets = run_lagging(lambda t: 0.3)
    assert all(at == {} for at in presets.values()) and tr.encoder_status["overload"]["steps_up"] == 0
