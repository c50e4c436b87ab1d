"""The live transcoder's tap: a feed made from the astronaut photograph (panned and zoomed
across frames, then plain frames) goes through the real LiveTranscoder; the tap's samples,
analysed and gathered per segment, tag the segments with her face and none after. No Ray."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ai_edge_litert", reason="the analysis extra is not installed")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) is not installed")

from orbitcast.analysis import FrameAnalyzer, SegmentTagger, available  # noqa: E402
from orbitcast.analysis.tap import FrameTap  # noqa: E402
from orbitcast.config import LadderConfig, Rung  # noqa: E402
from orbitcast.media.source import Source, SourceEnded  # noqa: E402
from orbitcast.media.transcode import LiveTranscoder  # noqa: E402
from orbitcast.segment import Segment  # noqa: E402

LADDER = LadderConfig(rungs=(Rung(name="lo", width=320, height=180, video_bitrate=200_000),), preset="ultrafast")
CLOCK = 1_700_000_000.0


def make_astronaut_clip(path: Path, seconds: float = 4.0, face_until: float = 2.0, fps: int = 10,
                        width: int = 1280, height: int = 720) -> Path:
    """H.264 MP4: the astronaut photograph panned left to right and zoomed in on a dark studio
    background for `face_until` seconds, then a plain grey picture."""
    photo = skimage_data.astronaut()
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "g": str(fps)}
        n = int(seconds * fps)
        for i in range(n):
            t = i / fps
            img = np.full((height, width, 3), 128 if t >= face_until else 35, np.uint8)
            if t < face_until:
                k = t / face_until
                side = int(height * (0.6 + 0.3 * k))  # zoom in
                x = int((width - side) * k)  # pan
                img[(height - side) // 2:(height - side) // 2 + side, x:x + side] = np.asarray(
                    Image.fromarray(photo).resize((side, side), Image.Resampling.BILINEAR))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def run_feed(path: Path, tap: FrameTap | None) -> tuple[list[Segment], list]:
    """The clip through a LiveTranscoder (with the tap, if any); the segments and the samples
    taken after each push, as the transcoder actor takes them."""
    src = Source(str(path), realtime=False, loop=False, clock=lambda: CLOCK)
    tr = LiveTranscoder("astro", LADDER, 1.0, 0.5, src.open(), frame_tap=tap)
    out, samples, batch = [], [], []
    try:
        for unit in src.units():
            batch.append(unit)
            if len(batch) >= 4:
                out += tr.push(batch)
                batch = []
                samples += tap.take() if tap else []
    except SourceEnded:
        pass
    out += tr.push(batch) + tr.flush()
    samples += tap.take() if tap else []
    src.close()
    return [x for x in out if isinstance(x, Segment)], samples


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_astronaut_clip(tmp_path_factory.mktemp("analysis") / "astronaut.mp4")


def test_the_tap_takes_two_scaled_pictures_a_second_and_leaves_the_output_alone(clip: Path) -> None:
    tap = FrameTap("astro", sample_fps=2.0, width=640)
    segments, samples = run_feed(clip, tap)
    plain, _ = run_feed(clip, None)
    assert [s.time for s in samples] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    assert all(s.picture.shape == (360, 640, 3) and s.picture.dtype == np.uint8 for s in samples)
    assert all(s.feed == "astro" and s.capture == pytest.approx(CLOCK + s.time) for s in samples)
    assert tap.stats() == {"sampled": 8, "overwritten": 0, "errors": 0}
    # the same segments, tapped or not (encoders are deterministic on one thread of input)
    assert [(s.seq, s.duration, len(s.parts)) for s in segments] == [(s.seq, s.duration, len(s.parts)) for s in plain]


def test_tapped_samples_tag_segments_with_her_face_and_none_after(clip: Path) -> None:
    if (why := available()) is not None:
        pytest.skip(why)
    _, samples = run_feed(clip, FrameTap("astro", sample_fps=2.0, width=640))
    analyzer = FrameAnalyzer.default()
    tagger = SegmentTagger(1.0)
    summaries = []
    for s in samples:
        summaries += tagger.add(analyzer.analyze(s.picture, s.time, s.capture))
    summaries += tagger.close()
    assert [(s.seq, s.frames, s.faces, s.expression) for s in summaries] == [
        (0, 2, 1, "happy"), (1, 2, 1, "happy"), (2, 2, 0, None), (3, 2, 0, None)]
    assert summaries[0].start == pytest.approx(CLOCK) and summaries[0].end == pytest.approx(CLOCK + 0.5)


def test_a_tap_nobody_empties_keeps_only_the_newest_samples() -> None:
    tap = FrameTap("f", sample_fps=10.0, width=64, keep=3)
    frame = av.VideoFrame.from_ndarray(np.zeros((72, 128, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    for i in range(10):
        tap(frame, i * 0.1, CLOCK + i * 0.1)
    kept = tap.take()
    assert [round(s.time, 1) for s in kept] == [0.7, 0.8, 0.9]
    assert kept[0].picture.shape == (36, 64, 3)
    assert tap.stats() == {"sampled": 10, "overwritten": 7, "errors": 0}
    assert tap.take() == []
