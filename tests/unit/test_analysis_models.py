"""The face detector and the expression model, run from their installed packages on a real
photograph: skimage's astronaut (Eileen Collins, smiling, face at about x 175-275, y 60-190 of
512 x 512), and on pictures with no face in them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ai_edge_litert", reason="the analysis extra is not installed")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) is not installed")

from orbitcast.analysis import (  # noqa: E402
    EXPRESSIONS, BlazeFaceDetector, FerExpressionClassifier, FrameAnalyzer, SegmentTagger, available,
)

_missing = available()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

FACE_REGION = (150, 30, 330, 230)  # x0, y0, x1, y1: her face and hair, nothing else of the picture
FACE_CENTRE = (224, 125)  # between the eyes and the mouth


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def analyzer() -> FrameAnalyzer:
    return FrameAnalyzer.default()


def _inside(box, region) -> bool:
    x0, y0, x1, y1 = region
    return box.x >= x0 and box.y >= y0 and box.x + box.w <= x1 and box.y + box.h <= y1


def _covers(box, point) -> bool:
    return box.x <= point[0] <= box.x + box.w and box.y <= point[1] <= box.y + box.h


def test_one_smiling_face_in_the_astronaut_photograph(analyzer: FrameAnalyzer, astronaut: np.ndarray) -> None:
    result = analyzer.analyze(astronaut, time=3.5)
    assert (result.width, result.height, result.time) == (512, 512, 3.5)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert _inside(face.box, FACE_REGION), face.box
    assert _covers(face.box, FACE_CENTRE), face.box
    assert face.box.w >= 70 and face.box.h >= 70, "the box is her face, not a feature of it"
    assert face.score >= 0.7
    assert len(face.probabilities) == len(EXPRESSIONS) == 7
    assert sum(face.probabilities) == pytest.approx(1.0, abs=1e-6)
    assert face.expression == "happy"
    assert face.confidence == max(face.probabilities) > 0.5


@pytest.mark.parametrize("range_", ["short", "full"])
def test_both_blazeface_ranges_find_her_face_in_rgb_and_grey(range_: str, astronaut: np.ndarray) -> None:
    detector = BlazeFaceDetector(range_)  # type: ignore[arg-type]
    grey = np.asarray(Image.fromarray(astronaut).convert("L"))
    for picture in (astronaut, grey):
        found = detector.detect(picture)
        assert len(found) == 1
        assert _inside(found[0].box, FACE_REGION) and _covers(found[0].box, FACE_CENTRE)


@pytest.mark.parametrize("size", [(1280, 720), (640, 360)])
def test_a_face_in_a_wide_video_frame_is_found_where_it_was_put(size: tuple[int, int], analyzer: FrameAnalyzer,
                                                                 astronaut: np.ndarray) -> None:
    """The photograph placed in a 16:9 studio frame, as a live feed shows a person; the box comes
    back in the frame's pixels, and a face of 40-odd pixels (640 x 360) is still classified."""
    frame = np.full((720, 1280, 3), 40, np.uint8)
    frame[100:612, 600:1112] = astronaut
    w, h = size
    if (w, h) != (1280, 720):
        frame = np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BILINEAR))
    s = w / 1280
    result = analyzer.analyze(frame)
    assert len(result.faces) == 1
    region = tuple(round(v * s) for v in (600 + FACE_REGION[0], 100 + FACE_REGION[1], 600 + FACE_REGION[2], 100 + FACE_REGION[3]))
    centre = (round((600 + FACE_CENTRE[0]) * s), round((100 + FACE_CENTRE[1]) * s))
    assert _inside(result.faces[0].box, region) and _covers(result.faces[0].box, centre)
    assert result.faces[0].expression == "happy"


def test_no_face_in_plain_noise_or_faceless_parts_of_the_photograph(analyzer: FrameAnalyzer, astronaut: np.ndarray) -> None:
    rng = np.random.default_rng(15)
    pictures = {
        "plain grey 16:9": np.full((360, 640, 3), 128, np.uint8),
        "black": np.zeros((720, 1280, 3), np.uint8),
        "noise": rng.integers(0, 256, (360, 640, 3), dtype=np.uint8),
        "her suit and helmet (below the face)": astronaut[260:, :],
        "the flag and the shuttle (beside the face)": np.concatenate([astronaut[:, :140], astronaut[:, 340:]], axis=1),
    }
    for name, picture in pictures.items():
        assert analyzer.analyze(picture).faces == (), name


def test_min_face_score_above_every_score_finds_nothing(astronaut: np.ndarray) -> None:
    strict = FrameAnalyzer.default(min_face_score=0.999)
    assert strict.analyze(astronaut).faces == ()


def test_the_classifier_can_say_something_else_than_happy(astronaut: np.ndarray) -> None:
    """Not a constant: her face upside down (no smile a model trained on upright faces knows)
    is not read as happy with the confidence of the upright face."""
    clf = FerExpressionClassifier()
    face = BlazeFaceDetector("full").detect(astronaut)[0].box
    upright = clf.classify(astronaut, face)
    flipped = clf.classify(np.ascontiguousarray(astronaut[::-1]), type(face)(face.x, 512 - face.y - face.h, face.w, face.h))
    assert upright[EXPRESSIONS.index("happy")] > 0.9
    assert flipped != upright
    assert flipped[EXPRESSIONS.index("happy")] < upright[EXPRESSIONS.index("happy")]


def test_a_feed_with_and_without_her_gets_segment_tags(analyzer: FrameAnalyzer, astronaut: np.ndarray) -> None:
    """Two pictures a second for three 1 s segments: her photograph panned across a 16:9 frame,
    then plain frames: segments 0-1 carry one happy face, segment 2 none."""
    tagger = SegmentTagger(segment_duration=1.0)
    summaries = []
    for k in range(6):
        t = k * 0.5
        frame = np.full((360, 640, 3), 30, np.uint8)
        if t < 2.0:
            small = np.asarray(Image.fromarray(astronaut).resize((300, 300)))
            x = 40 + 60 * k
            frame[30:330, x:x + 300] = small
        summaries += tagger.add(analyzer.analyze(frame, time=t, capture=1_700_000_000 + t))
    summaries += tagger.close()
    assert [s.seq for s in summaries] == [0, 1, 2]
    assert [s.frames for s in summaries] == [2, 2, 2]
    assert [s.faces for s in summaries] == [1, 1, 0]
    assert [s.expression for s in summaries] == ["happy", "happy", None]
    assert summaries[0].confidence is not None and summaries[0].confidence > 0.5
    assert summaries[2].confidence is None and summaries[2].probabilities == {}


def test_feed_analysis_keeps_tags_by_segment_and_time(analyzer: FrameAnalyzer, astronaut: np.ndarray) -> None:
    from orbitcast.analysis import FeedAnalysis, Sample

    feed = FeedAnalysis("astro", analyzer, segment_duration=1.0, keep=2)
    plain = np.full((360, 640, 3), 90, np.uint8)
    samples = [Sample("astro", t, 1000.0 + t, astronaut if t < 1.0 else plain) for t in (0.0, 0.5, 1.0, 1.5, 2.0)]
    closed = feed.add(samples[:3])
    assert [(s.seq, s.faces, s.expression) for s in closed] == [(0, 1, "happy")]
    assert feed.latest is not None and feed.latest.time == 1.0 and feed.latest.faces == ()
    feed.add([Sample("other", 1.2, 1001.2, astronaut)])  # not this feed's: refused
    feed.add(samples[3:])
    assert [s.seq for s in feed.close()] == [2]
    # keep=2: the oldest tags went
    assert [(s.seq, s.faces) for s in feed.summaries()] == [(1, 0), (2, 0)]
    assert [s.seq for s in feed.summaries(first_seq=2)] == [2]
    assert [s.seq for s in feed.between(1001.0, 1001.6)] == [1]
    # what the edge follows: tags after the newest it has (None: the newest few)
    assert [s.seq for s in feed.after(None)] == [1, 2] and [s.seq for s in feed.after(None, limit=1)] == [2]
    assert [s.seq for s in feed.after(1)] == [2] and feed.after(2) == []
    assert feed.stats() == {"analysed": 5, "late": 0, "refused": 1, "segments": 2, "newest_seq": 2}
