"""Any codec FFmpeg decodes plays: sources in the codecs, layouts, rates and containers that
feeds arrive in, made on the fly by Debian's ffmpeg, each driven through `Source` and
`LiveTranscoder` (no Ray) and checked the way a viewer's player would see them: every rung
decodes in ffmpeg, carries AAC stereo 48 kHz, and lasts as long as the source.

The matrix is not the cross product: each video codec, audio codec, layout, rate and container
appears at least once, plus the cases that broke before (B-frames, a looped MPEG-TS, audio
whose timestamps repeat, audio that starts late, no audio at all, a codec FFmpeg lacks).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from orbitcast.config import LadderConfig, Rung
from orbitcast.media.fmp4 import tracks_of
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder, TranscodeError
from orbitcast.media.units import MediaUnit
from orbitcast.segment import Segment

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg on PATH")

D, PART, SECONDS = 1.0, 0.5, 2.0
LADDER = LadderConfig(
    rungs=(
        Rung(name="hi", width=320, height=180, video_bitrate=200_000),
        Rung(name="lo", width=192, height=108, video_bitrate=80_000),
    ),
    audio_bitrate=64_000,
    preset="ultrafast",
)


@dataclass(frozen=True)
class Cell:
    video: str  # ffmpeg output options for the video stream
    audio: str | None  # for the audio stream; None: a source without audio
    ext: str
    size: str = "320x180"
    rate: str = "25"
    sample_rate: int = 48000
    extra_input: str = ""  # ffmpeg options before the audio input (e.g. -itsoffset)
    vf: str = ""


X264_BFRAMES = "-c:v libx264 -preset veryfast -bf 3 -g 250"
CELLS = {
    "h264 with B-frames and a 10 s GOP in MPEG-TS, AAC stereo 48 kHz": Cell(X264_BFRAMES, "-c:a aac -ac 2", "ts"),
    "interlaced h264 in MKV, Opus stereo 48 kHz": Cell(
        "-c:v libx264 -preset veryfast -flags +ildct+ilme -x264-params interlaced=1", "-c:a libopus -ac 2", "mkv",
        vf="setfield=tff"),
    "hevc in MP4, AC-3 5.1 48 kHz": Cell(
        "-c:v libx265 -preset ultrafast -x265-params log-level=none", "-c:a ac3 -ac 6", "mp4"),
    "mpeg-2 in MPEG-TS, MP2 stereo 48 kHz (a satellite receiver)": Cell("-c:v mpeg2video", "-c:a mp2 -ac 2", "ts"),
    "vp9 in MKV, Opus mono 48 kHz": Cell("-c:v libvpx-vp9 -deadline realtime -cpu-used 8", "-c:a libopus -ac 1", "mkv"),
    "av1 in MKV, PCM 5.1 44.1 kHz": Cell(
        "-c:v libsvtav1 -preset 12", "-c:a pcm_s16le -ac 6", "mkv", sample_rate=44100),
    "h264 in FLV, AAC mono 44.1 kHz": Cell(X264_BFRAMES, "-c:a aac -ac 1", "flv", sample_rate=44100),
    "mpeg-2 in MPEG-TS, AC-3 stereo 44.1 kHz": Cell("-c:v mpeg2video", "-c:a ac3 -ac 2", "ts", sample_rate=44100),
    "odd size 318x178 at 29.97 fps in MP4": Cell(
        "-c:v libx264 -preset veryfast", "-c:a aac -ac 2", "mp4", size="318x178", rate="30000/1001"),
    "variable frame rate h264 in MKV": Cell(
        "-c:v libx264 -preset veryfast -vsync vfr", "-c:a aac -ac 2", "mkv", rate="30", vf="select='mod(n\\,3)'"),
    "video without audio": Cell("-c:v libx264 -preset veryfast", None, "mp4"),
    "audio that starts 1 s after the pictures, MPEG-TS": Cell(
        "-c:v mpeg2video", "-c:a mp2 -ac 2", "ts", extra_input="-itsoffset 1"),
}


def make_source(path: Path, cell: Cell) -> Path:
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={cell.size}:rate={cell.rate}"]
    if cell.audio is not None:
        cmd += cell.extra_input.split() + [
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={cell.sample_rate}:duration={SECONDS}"]
    cmd += ["-t", str(SECONDS), "-pix_fmt", "yuv420p"] + cell.video.split()
    if cell.vf:
        cmd += ["-vf", cell.vf]
    cmd += cell.audio.split() if cell.audio is not None else []
    subprocess.run(cmd + [str(path)], check=True, capture_output=True, timeout=60)
    return path


@dataclass
class Played:
    transcoder: LiveTranscoder
    segments: list[Segment]
    units: list[MediaUnit]

    def stream(self, rung: str) -> bytes:
        mine = sorted((s for s in self.segments if s.rendition == rung), key=lambda s: s.seq)
        return self.transcoder.init_segments[rung] + b"".join(s.data for s in mine)


def play(url: str, sessions: int = 1, retime=None) -> Played:  # type: ignore[no-untyped-def]
    """Read the source `sessions` times in a row on one timeline (as a looping feed does)."""
    src = Source(url, realtime=False, loop=True, clock=lambda: 1_700_000_000.0)
    tr: LiveTranscoder | None = None
    out: list = []
    units: list[MediaUnit] = []
    for _ in range(sessions):
        streams = src.open()
        if tr is None:
            tr = LiveTranscoder("feed", LADDER, D, PART, streams)
        else:
            tr.change_input(streams)
        session: list[MediaUnit] = []
        try:
            for u in src.units():
                session.append(u)
        except SourceEnded:
            pass
        if retime is not None:
            session = retime(session)
        units += session
        for i in range(0, len(session), 8):
            out += tr.push(session[i:i + 8])
        src.end_session()
    assert tr is not None
    out += tr.flush()
    return Played(tr, [x for x in out if isinstance(x, Segment)], units)


def source_frames(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return sorted(float(f.pts * f.time_base) for f in c.decode(video=0))


def ffprobe_streams(path: Path) -> list[dict]:
    res = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height,sample_rate,channels",
         "-of", "json", str(path)], check=True, capture_output=True, text=True, timeout=30)
    return json.loads(res.stdout)["streams"]


def audio_of(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as c:
        return np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)


def check_every_rung_plays(played: Played, tmp: Path, frames: list[float]) -> None:
    """Every rung decodes in ffmpeg without an error, holds H.264 at its size and AAC stereo
    48 kHz, has every source picture, and its audio lasts as long as its pictures."""
    duration = frames[-1] - frames[0] + (frames[-1] - frames[-2])
    for rung in LADDER.rungs:
        data = played.stream(rung.name)
        assert [t.handler for t in tracks_of(played.transcoder.init_segments[rung.name])] == ["vide", "soun"]
        out = tmp / f"{rung.name}.mp4"
        out.write_bytes(data)
        decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"],
                                 capture_output=True, text=True, timeout=60)
        assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr
        streams = {s["codec_type"]: s for s in ffprobe_streams(out)}
        assert (streams["video"]["codec_name"], streams["video"]["width"], streams["video"]["height"]) == (
            "h264", rung.width, rung.height)
        assert (streams["audio"]["codec_name"], streams["audio"]["sample_rate"], streams["audio"]["channels"]) == (
            "aac", "48000", 2)
        with av.open(io.BytesIO(data)) as c:
            pts = [float(f.pts * f.time_base) for f in c.decode(video=0)]
        assert len(pts) == len(frames), f"{rung.name}: {len(pts)} pictures of {len(frames)}"
        assert pts[-1] - pts[0] == pytest.approx(frames[-1] - frames[0], abs=1e-3)
        audio_seconds = audio_of(data).shape[1] / 48000
        assert audio_seconds == pytest.approx(duration, abs=0.05), f"{rung.name}: audio {audio_seconds:.3f} s"


@pytest.mark.parametrize("name", list(CELLS))
def test_source_plays_in_every_rung_with_aac_stereo_48k(name: str, tmp_path: Path) -> None:
    cell = CELLS[name]
    src = make_source(tmp_path / f"source.{cell.ext}", cell)
    check_every_rung_plays(play(str(src)), tmp_path, source_frames(src))


def test_audio_that_starts_late_is_preceded_by_silence(tmp_path: Path) -> None:
    cell = CELLS["audio that starts 1 s after the pictures, MPEG-TS"]
    src = make_source(tmp_path / "late.ts", cell)
    samples = audio_of(play(str(src)).stream("hi"))
    level = [float(np.abs(samples[:, i:i + 4800]).max()) for i in range(0, samples.shape[1], 4800)]  # per 0.1 s
    assert max(level[:9]) == 0.0  # silence up to ~0.9 s
    assert min(level[11:19]) > 0.05  # the tone from ~1.1 s on


def test_video_without_audio_gets_a_silent_track(tmp_path: Path) -> None:
    src = make_source(tmp_path / "mute.mp4", CELLS["video without audio"])
    assert float(np.abs(audio_of(play(str(src)).stream("lo"))).max()) == 0.0


def test_mpeg_ts_looped_keeps_playing_on_one_timeline(tmp_path: Path) -> None:
    src = make_source(tmp_path / "sat.ts", CELLS["mpeg-2 in MPEG-TS, MP2 stereo 48 kHz (a satellite receiver)"])
    once = source_frames(src)
    step = once[1] - once[0]
    frames = once + [t - once[0] + once[-1] + step for t in once]
    check_every_rung_plays(play(str(src), sessions=2), tmp_path, frames)


def test_audio_whose_timestamps_repeat_plays(tmp_path: Path) -> None:
    """Satellite muxers pack several audio frames in one PES under one timestamp; the
    transcoder used to copy such times onto AAC and the muxer refused them ("Invalid
    argument: '<none>' returned 22")."""
    src = make_source(tmp_path / "pes.ts", CELLS["mpeg-2 in MPEG-TS, MP2 stereo 48 kHz (a satellite receiver)"])

    def one_time_per_pes(units: list[MediaUnit]) -> list[MediaUnit]:
        return [MediaUnit(u.kind, u.data, math.floor(u.time / 0.1) * 0.1 if u.kind == "audio" else u.time,
                          u.capture, u.keyframe) for u in units]

    check_every_rung_plays(play(str(src), retime=one_time_per_pes), tmp_path, source_frames(src))


def test_undecodable_video_fails_with_the_stream_and_codec_named(tmp_path: Path) -> None:
    # a64multi has an encoder but no decoder; in Matroska FFmpeg no longer knows the codec.
    path = tmp_path / "a64.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x200:rate=25", "-t", "1",
                    "-c:v", "a64multi", str(path)], check=True, capture_output=True, timeout=60)
    streams = Source(str(path), realtime=False).open()
    with pytest.raises(TranscodeError) as err:
        LiveTranscoder("feed", LADDER, D, PART, streams)
    assert str(err.value) == "video stream 0: codec 'unknown' cannot be decoded"
