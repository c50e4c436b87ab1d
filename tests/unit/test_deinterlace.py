"""Interlaced sources come out progressive: a 25i source whose fields were taken 1/50 s apart
(combed on every moving edge) goes through `Source` and `LiveTranscoder` (no Ray), and
FFmpeg's own field detector (`idet`), which finds the source interlaced, finds the rung
progressive. Progressive pictures never enter the filter."""

from __future__ import annotations

import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from orbitcast.config import LadderConfig, Rung
from orbitcast.media.deinterlace import Deinterlacer
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.segment import Segment

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg on PATH")

TB = Fraction(1, 90000)
LADDER = LadderConfig(rungs=(Rung(name="same", width=320, height=180, video_bitrate=600_000),),
                      audio_bitrate=64_000, preset="ultrafast")


def idet(path: Path) -> dict[str, int]:
    """FFmpeg's multi-frame field detection counts: TFF, BFF, Progressive, Undetermined."""
    run = subprocess.run(["ffmpeg", "-nostdin", "-v", "info", "-i", str(path), "-map", "0:v:0", "-vf", "idet",
                          "-f", "null", "-"], capture_output=True, text=True, timeout=60)
    line = [x for x in run.stderr.splitlines() if "Multi frame detection" in x][-1]
    return {k: int(v) for k, v in re.findall(r"(TFF|BFF|Progressive|Undetermined):\s*(\d+)", line)}


def interlaced_source(path: Path) -> Path:
    # 50 pictures a second woven into 25 interlaced frames, top field first: each frame's two
    # fields show the moving pattern 1/50 s apart, as a broadcast camera's do.
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=50", "-t", "3",
                    "-vf", "tinterlace=interleave_top,setfield=tff", "-c:v", "libx264", "-preset", "veryfast",
                    "-flags", "+ildct+ilme", "-x264-params", "interlaced=1:tff=1", "-pix_fmt", "yuv420p",
                    str(path)], check=True, capture_output=True, timeout=60)
    return path


def transcode(url: str) -> tuple[bytes, int]:
    src = Source(url, realtime=False, clock=lambda: 1_700_000_000.0)
    tr = LiveTranscoder("feed", LADDER, 1.0, 0.5, src.open())
    out: list = []
    units = []
    try:
        for u in src.units():
            units.append(u)
    except SourceEnded:
        pass
    for i in range(0, len(units), 8):
        out += tr.push(units[i:i + 8])
    out += tr.flush()
    segments = sorted((x for x in out if isinstance(x, Segment)), key=lambda s: s.seq)
    return tr.init_segments["same"] + b"".join(s.data for s in segments), tr._deinterlace.pictures


def test_an_interlaced_source_comes_out_progressive(tmp_path: Path) -> None:
    source = interlaced_source(tmp_path / "25i.mkv")
    before = idet(source)
    assert before["TFF"] > 10 * max(1, before["Progressive"])  # the source is detectably interlaced
    data, filtered = transcode(str(source))
    out = tmp_path / "rung.mp4"
    out.write_bytes(data)
    after = idet(out)
    assert filtered == 75  # every picture went through the filter, none lost at the end
    assert after["Progressive"] > 10 * max(1, after["TFF"] + after["BFF"]), after
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 75  # 3 s at 25 frames a second


def test_a_progressive_source_never_enters_the_filter(tmp_path: Path) -> None:
    path = tmp_path / "p.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "1",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)],
                   check=True, capture_output=True, timeout=60)
    data, filtered = transcode(str(path))
    assert filtered == 0 and data


def picture(pts: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.full((36, 64, 3), pts % 255, np.uint8), format="rgb24").reformat(format="yuv420p")
    frame.pts, frame.time_base = pts, TB
    return frame


def test_progressive_pictures_pass_untouched_and_at_once() -> None:
    d = Deinterlacer(TB)
    frames = [picture(i * 3600) for i in range(4)]
    for f in frames:
        assert d.push(f) == [f]
    assert not d.active and d.flush() == []


def test_timestamps_are_kept_through_the_filter(tmp_path: Path) -> None:
    source = interlaced_source(tmp_path / "25i.mkv")
    d = Deinterlacer(TB)
    ins, outs = [], []
    with av.open(str(source)) as c:
        for f in c.decode(video=0):
            f.pts = round(f.pts * f.time_base / TB)
            f.time_base = TB
            ins.append(f.pts)
            outs += [o.pts for o in d.push(f)]
    outs += [o.pts for o in d.flush()]
    assert d.pictures == len(ins) and outs == ins  # one out per picture in, in order, same times
