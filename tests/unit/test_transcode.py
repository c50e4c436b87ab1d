"""The live ladder transcoder, driven by real PyAV sources (lavfi and files), checked by decoding
its CMAF output back with PyAV."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from orbitcast.config import LadderConfig, Rung
from orbitcast.media.audio import LadderAudio
from orbitcast.media.fmp4 import find_box, iter_boxes, tracks_of
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder, TranscodeError
from orbitcast.media.units import FeedStreams, MediaUnit, StreamInfo
from orbitcast.segment import Part, Segment
from tests.media import make_clip

D = 2.0
PART = 0.5
LAVFI = "lavfi:testsrc2=size=320x240:rate=30,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"
LADDER = LadderConfig(
    rungs=(
        Rung(name="hi", width=320, height=240, video_bitrate=300_000),
        Rung(name="lo", width=160, height=120, video_bitrate=100_000),
    ),
    audio_bitrate=64_000,
    preset="ultrafast",
)
NAMES = [r.name for r in LADDER.rungs]
CLOCK = 1_700_000_000.0


@dataclass
class Run:
    transcoder: LiveTranscoder
    published: list[Part | Segment]  # in the order push() returned them
    units: list[MediaUnit]
    inits_by_session: list[dict[str, bytes]] = field(default_factory=list)

    @property
    def segments(self) -> list[Segment]:
        return [x for x in self.published if isinstance(x, Segment)]

    def parts(self, rung: str) -> list[Part]:
        return [x for x in self.published if isinstance(x, Part) and x.rendition == rung]

    def of(self, rung: str) -> list[Segment]:
        return sorted((s for s in self.segments if s.rendition == rung), key=lambda s: s.seq)

    def stream(self, rung: str) -> bytes:
        return self.transcoder.init_segments[rung] + b"".join(s.data for s in self.of(rung))


def transcode(urls: list[str], seconds: float | None = None, batch: int = 8, ladder: LadderConfig = LADDER) -> Run:
    """Read each url in turn (one session each, as a looping/reopening feed does) through one
    LiveTranscoder; `seconds` bounds a session of an endless source."""
    src = Source(urls[0], realtime=False, loop=True, clock=lambda: CLOCK)
    tr: LiveTranscoder | None = None
    segments: list[Part | Segment] = []
    units: list[MediaUnit] = []
    inits: list[dict[str, bytes]] = []
    for url in urls:
        src.url = url
        streams = src.open()
        if tr is None:
            tr = LiveTranscoder("feed", ladder, D, PART, streams)
        else:
            inits.append(dict(tr.init_segments))
            tr.change_input(streams)
        pending: list[MediaUnit] = []
        start = units[-1].time if units else 0.0
        try:
            for u in src.units():
                pending.append(u)
                units.append(u)
                if len(pending) >= batch:
                    segments += tr.push(pending)
                    pending = []
                if seconds is not None and u.time - start >= seconds:
                    break
        except SourceEnded:
            pass
        segments += tr.push(pending)
        src.end_session()
    assert tr is not None
    segments += tr.flush()
    inits.append(dict(tr.init_segments))
    return Run(tr, segments, units, inits)


def decode_video(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data)) as c:
        return list(c.decode(video=0))


def decode_audio_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as c:
        if not c.streams.audio:
            return 0.0
        return sum(f.samples for f in c.decode(audio=0)) / 48000


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("tc") / "clip.mp4", seconds=5.0, width=320, height=240)


@pytest.fixture(scope="module")
def lavfi_run() -> Run:
    return transcode([LAVFI], seconds=5.0)


@pytest.fixture(scope="module")
def clip_run(clip: Path) -> Run:
    return transcode([str(clip)])


@pytest.fixture(params=["lavfi", "clip"])
def run(request: pytest.FixtureRequest) -> Run:
    return request.getfixturevalue(f"{request.param}_run")


# -- outputs ------------------------------------------------------------------------------
def test_init_segment_per_rung(run: Run) -> None:
    inits = run.transcoder.init_segments
    assert sorted(inits) == sorted(NAMES)
    for name, init in inits.items():
        assert [t for t, _, _ in iter_boxes(init)] == [b"ftyp", b"moov"]
        assert sorted(t.handler for t in tracks_of(init)) == ["soun", "vide"]
        with av.open(io.BytesIO(init)) as c:
            rung = next(r for r in LADDER.rungs if r.name == name)
            v = c.streams.video[0]
            assert (v.codec_context.width, v.codec_context.height) == (rung.width, rung.height)
            assert v.codec_context.name == "h264"
            assert c.streams.audio[0].codec_context.name == "aac"


def test_codecs_strings(run: Run) -> None:
    codecs = run.transcoder.codecs
    assert sorted(codecs) == sorted(NAMES)
    for name, value in codecs.items():
        m = re.fullmatch(r"avc1\.([0-9a-f]{6}),mp4a\.40\.2", value)
        assert m, value
        # the profile/compat/level bytes are those of the avcC the decoder sees
        with av.open(io.BytesIO(run.transcoder.init_segments[name])) as c:
            extradata = bytes(c.streams.video[0].codec_context.extradata)
        assert m.group(1) == extradata[1:4].hex()


def test_segments_numbered_by_time(run: Run) -> None:
    for name in NAMES:
        segs = run.of(name)
        seqs = [s.seq for s in segs]
        assert seqs == list(range(len(seqs))), f"{name}: {seqs}"
        assert len(seqs) >= 3  # ~5 s of media in 2 s segments
        for s in segs:
            assert s.seq == math.floor(s.start / D + 1e-9)
            assert s.seq * D <= s.start + 1e-6 < (s.seq + 1) * D
            assert s.feed == "feed"
    assert [s.seq for s in run.of(NAMES[0])] == [s.seq for s in run.of(NAMES[1])]


@pytest.mark.parametrize("start", [1000.185, 1000.385, 1000.6])
def test_a_timeline_off_the_segment_grid_makes_each_seq_once(start: float) -> None:
    """A live feed's timeline starts at the wall clock, so its pictures (25 fps here) are not on
    the segment grid, and the first segment's parts are cut from its first picture: one of
    them ends half a frame before the boundary (CI once catalogued that seq twice)."""
    src = Source("lavfi:testsrc2=size=320x240:rate=25,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]",
                 realtime=False, clock=lambda: CLOCK, start_time=start)
    tr = LiveTranscoder("feed", LADDER, 1.0, 0.2, src.open())
    out: list[Part | Segment] = []
    for u in src.units():
        out += tr.push([u])
        if u.time - start >= 2.5:
            break
    out += tr.flush()
    for name in NAMES:
        segs = [s for s in out if isinstance(s, Segment) and s.rendition == name]
        seqs = [s.seq for s in segs]
        assert seqs == list(range(1000, 1000 + len(segs))) and len(segs) >= 3, [(s.seq, s.start, s.duration) for s in segs]
        for a, b in zip(segs, segs[1:]):
            assert a.start + a.duration == pytest.approx(b.start, abs=1e-6)
            assert b.start >= b.seq * 1.0  # each begins on its own side of the boundary
        for s in segs:
            assert decode_video(tr.init_segments[name] + s.data)[0].key_frame


def test_every_segment_starts_with_a_keyframe_at_the_same_time_in_every_rung(run: Run) -> None:
    starts: dict[int, set[float]] = {}
    for name in NAMES:
        init = run.transcoder.init_segments[name]
        for s in run.of(name):
            frames = decode_video(init + s.data)
            assert frames, f"{name}/{s.seq}: no frames"
            first = frames[0]
            assert first.key_frame, f"{name}/{s.seq} does not start with a keyframe"
            assert first.pict_type == av.video.frame.PictureType.I
            pts = float(first.pts * first.time_base)
            assert pts == pytest.approx(s.start, abs=1e-4)
            assert not any(f.key_frame for f in frames[1:]), "keyframes only at segment starts"
            starts.setdefault(s.seq, set()).add(round(pts, 4))
    assert all(len(v) == 1 for v in starts.values()), starts


def test_parts_are_published_as_cut_and_make_up_their_segment(run: Run) -> None:
    for name in NAMES:
        parts = run.parts(name)
        by_seq: dict[int, list[Part]] = {}
        for p in parts:
            by_seq.setdefault(p.seq, []).append(p)
        for seg in run.of(name):
            mine = by_seq[seg.seq]
            assert [p.index for p in mine] == list(range(len(mine)))
            assert b"".join(p.data for p in mine) == seg.data
            assert [p.size for p in mine] == list(seg.parts)
            assert sum(p.duration for p in mine) == pytest.approx(seg.duration, abs=1e-4)
            assert mine[0].start == pytest.approx(seg.start, abs=1e-6)
            assert [p.independent for p in mine] == [True] + [False] * (len(mine) - 1)
            for p in mine:
                assert p.digest == p.verified().digest
                # the same wall clock as the segment, advanced by media time
                assert (p.program_date_time - seg.program_date_time).total_seconds() == pytest.approx(p.start - seg.start, abs=1e-3)
        # the parts of a segment, from its first to any later one, decode after the init segment
        init = run.transcoder.init_segments[name]
        first = run.of(name)[0]
        mine = by_seq[first.seq]
        assert len(decode_video(init + b"".join(p.data for p in mine[:2]))) == round(2 * PART * 30)


def test_a_segment_is_published_right_after_its_last_part(run: Run) -> None:
    for name in NAMES:
        order = [x for x in run.published if x.rendition == name]
        for i, x in enumerate(order):
            if isinstance(x, Segment):
                before = order[i - 1]
                assert isinstance(before, Part) and before.seq == x.seq and before.index == len(x.parts) - 1
        # and never after a part of the next segment, except the last segment at flush
        segments_at = {x.seq: i for i, x in enumerate(order) if isinstance(x, Segment)}
        for seq, i in segments_at.items():
            assert not any(isinstance(y, Part) and y.seq > seq for y in order[:i])


def test_full_segments_have_d_over_part_parts(run: Run) -> None:
    per_segment = round(D / PART)
    for name in NAMES:
        segs = run.of(name)
        for s in segs[:-1]:
            assert s.duration == pytest.approx(D, abs=1e-3)
            assert len(s.parts) == per_segment == 4
        for s in segs:
            assert sum(s.parts) == s.size == len(s.data)
            offset = 0
            for i, n in enumerate(s.parts):
                part = s.data[offset:offset + n]
                offset += n
                assert [t for t, _, _ in iter_boxes(part)] == [b"moof", b"mdat"], (name, s.seq, i)
            # the last one is what was left when the source ended: at most D
            assert 0 < s.duration <= D + 1e-6


def test_parts_start_on_part_boundaries(run: Run) -> None:
    init = run.transcoder.init_segments[NAMES[0]]
    video = next(t for t in tracks_of(init) if t.handler == "vide")
    for s in run.of(NAMES[0]):
        offset = 0
        for i, n in enumerate(s.parts):
            part = s.data[offset:offset + n]
            offset += n
            tfdt = find_box(part, [b"moof", b"traf", b"tfdt"])
            assert tfdt is not None
            times = []
            for typ, a, b in iter_boxes(part, find_box(part, [b"moof"])[0] + 8):  # type: ignore[index]
                if typ == b"traf":
                    tfhd = find_box(part, [b"tfhd"], a + 8, b)
                    tf = find_box(part, [b"tfdt"], a + 8, b)
                    assert tfhd and tf
                    track = int.from_bytes(part[tfhd[0] + 12: tfhd[0] + 16], "big")
                    if track == video.track_id:
                        v = part[tf[0] + 8]
                        raw = part[tf[0] + 12: tf[0] + (20 if v == 1 else 16)]
                        times.append(int.from_bytes(raw, "big") / video.timescale)
            assert len(times) == 1
            assert times[0] == pytest.approx(s.start + i * PART, abs=1 / 30 + 1e-6)


def test_durations_cover_the_media(run: Run) -> None:
    video = [u.time for u in run.units if u.kind == "video"]
    for name in NAMES:
        segs = run.of(name)
        total = sum(s.duration for s in segs)
        assert total == pytest.approx(video[-1] + 1 / 30, abs=1e-3)
        for a, b in zip(segs, segs[1:]):
            assert a.start + a.duration == pytest.approx(b.start, abs=1e-6)


def test_no_frame_is_lost(run: Run) -> None:
    n_video = sum(1 for u in run.units if u.kind == "video")
    for name in NAMES:
        rung = next(r for r in LADDER.rungs if r.name == name)
        frames = decode_video(run.stream(name))
        assert len(frames) == n_video
        assert {(f.width, f.height) for f in frames} == {(rung.width, rung.height)}
        pts = [float(f.pts * f.time_base) for f in frames]
        assert pts == sorted(pts)
        # and frame by frame, with segments decoded alone (a player joining at any segment)
        assert sum(len(decode_video(run.transcoder.init_segments[name] + s.data)) for s in run.of(name)) == n_video


def test_audio_in_every_rung(run: Run) -> None:
    media = max(u.time for u in run.units if u.kind == "video") + 1 / 30
    for name in NAMES:
        assert decode_audio_seconds(run.stream(name)) == pytest.approx(media, abs=0.15)


@pytest.mark.parametrize("bit_rate", [64_000, 128_000])  # the default coder, and the fast one
def test_the_ladders_sound_is_the_tone_it_was_given(bit_rate: int) -> None:
    audio = LadderAudio(bit_rate)
    t = np.arange(48000 * 2) / 48000
    tone = np.tile((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (2, 1))
    packets = []
    for i in range(0, tone.shape[1], 960):  # 20 ms frames, as a source gives them
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, i:i + 960]), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        packets += audio.add(frame, i / 48000)
    packets += audio.flush()
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = audio.encoder.extradata
    pcm = np.concatenate([f.to_ndarray()[0] for p in packets for f in decoder.decode(p)])
    heard = pcm[len(pcm) // 4:]  # past the encoder's priming
    peak_hz = np.argmax(np.abs(np.fft.rfft(heard))) * 48000 / len(heard)
    assert abs(peak_hz - 440) < 2, peak_hz
    assert abs(np.sqrt(np.mean(heard ** 2)) - 0.3 / np.sqrt(2)) < 0.03  # its level kept


def test_program_date_time_is_capture_time_of_first_frame(run: Run) -> None:
    capture = {round(u.time, 4): u.capture for u in run.units if u.kind == "video"}
    by_seq: dict[int, set[float]] = {}
    for s in run.segments:
        expected = capture[round(s.start, 4)]
        assert s.program_date_time.timestamp() == pytest.approx(expected, abs=1e-3)
        assert s.program_date_time.tzinfo is not None and s.program_date_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        by_seq.setdefault(s.seq, set()).add(s.program_date_time.timestamp())
    assert all(len(v) == 1 for v in by_seq.values())
    # with the fixed clock, capture = anchor + media time
    for s in run.segments:
        assert s.program_date_time.timestamp() == pytest.approx(CLOCK + s.start, abs=1e-3)


def test_digests_and_bitrates(run: Run) -> None:
    for s in run.segments:
        s.verified()
    hi = sum(s.size for s in run.of("hi"))
    lo = sum(s.size for s in run.of("lo"))
    assert hi > lo  # the bigger rung costs more bytes


# -- sessions -----------------------------------------------------------------------------
def test_looped_file_keeps_one_timeline(tmp_path: Path) -> None:
    short = make_clip(tmp_path / "short.mp4", seconds=1.5, width=320, height=240)
    run = transcode([str(short)] * 3)
    assert len(run.inits_by_session) == 3
    assert all(i == run.inits_by_session[0] for i in run.inits_by_session)  # one init throughout
    for name in NAMES:
        segs = run.of(name)
        assert [s.seq for s in segs] == [0, 1, 2]
        assert [len(s.parts) for s in segs[:-1]] == [4, 4]
        frames = decode_video(run.stream(name))
        assert len(frames) == 3 * 45
        pts = [float(f.pts * f.time_base) for f in frames]
        steps = [b - a for a, b in zip(pts, pts[1:])]
        assert max(steps) == pytest.approx(1 / 30, abs=1e-4), "a gap in the timeline"
        assert min(steps) == pytest.approx(1 / 30, abs=1e-4)
        assert decode_audio_seconds(run.stream(name)) == pytest.approx(4.5, abs=0.15)


def test_change_input_to_other_stream_parameters(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", seconds=2.5, width=320, height=240, fps=30)
    b = make_clip(tmp_path / "b.mp4", seconds=2.5, width=176, height=144, fps=25, gop=25)
    run = transcode([str(a), str(b)])
    assert run.inits_by_session[0] == run.inits_by_session[1]  # same outputs, no new init
    for name in NAMES:
        rung = next(r for r in LADDER.rungs if r.name == name)
        segs = run.of(name)
        assert [s.seq for s in segs] == list(range(len(segs))) and len(segs) >= 3
        frames = decode_video(run.stream(name))
        assert len(frames) == 75 + 62
        assert {(f.width, f.height) for f in frames} == {(rung.width, rung.height)}
        pts = [float(f.pts * f.time_base) for f in frames]
        assert pts == sorted(pts)
        assert pts[75] == pytest.approx(2.5, abs=1e-4)  # the second file follows the first
        for s in segs:
            assert decode_video(run.transcoder.init_segments[name] + s.data)[0].key_frame


def test_video_only_source_gets_a_silent_audio_track_in_every_rung() -> None:
    run = transcode(["lavfi:testsrc2=size=320x240:rate=30"], seconds=2.5)
    media = max(u.time for u in run.units) + 1 / 30
    for name in NAMES:
        init = run.transcoder.init_segments[name]
        assert [t.handler for t in tracks_of(init)] == ["vide", "soun"]
        assert re.fullmatch(r"avc1\.[0-9a-f]{6},mp4a\.40\.2", run.transcoder.codecs[name])
        assert [s.seq for s in run.of(name)] == [0, 1]
        assert decode_audio_seconds(run.stream(name)) == pytest.approx(media, abs=0.05)
        with av.open(io.BytesIO(run.stream(name))) as c:
            assert max(abs(f.to_ndarray()).max() for f in c.decode(audio=0)) == 0.0


def test_unsupported_codec() -> None:
    streams = FeedStreams(video=StreamInfo("video", "no-such-codec", Fraction(1, 90000), None, 320, 240))
    with pytest.raises(TranscodeError, match="video stream 0: codec 'no-such-codec' cannot be decoded"):
        LiveTranscoder("f", LADDER, D, PART, streams)

