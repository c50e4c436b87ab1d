"""PyAV sources: failure reasons, pacing, one continuous timeline across loops, capture times."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from orbitcast.media.source import Source, SourceEnded, SourceError, is_network
from orbitcast.media.units import MediaUnit
from tests.media import make_clip, make_corrupt, make_truncated

LAVFI = "lavfi:testsrc2=size=160x120:rate=30,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"
LAVFI_VIDEO_ONLY = "lavfi:testsrc2=size=160x120:rate=30"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("source-media")
    make_clip(d / "clip.mp4", seconds=1.5, width=160, height=120)
    make_clip(d / "silent.mp4", seconds=1.0, width=160, height=120, audio=False)
    make_corrupt(d / "corrupt.mp4", size=50_000)
    make_truncated(d / "clip.mp4", d / "truncated.mp4")
    _make_audio_only(d / "audio.m4a", seconds=1.0)
    return d


def _make_audio_only(path: Path, seconds: float) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=48000)
        s.layout = "stereo"
        n = int(seconds * 48000 / 1024)
        for k in range(n):
            t = (np.arange(1024) + k * 1024) / 48000
            tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
            f = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            f.sample_rate, f.pts, f.time_base = 48000, k * 1024, Fraction(1, 48000)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    return path


def read_all(src: Source) -> list[MediaUnit]:
    out: list[MediaUnit] = []
    with pytest.raises(SourceEnded):
        for u in src.units():
            out.append(u)
    return out


def take_until(units: Iterator[MediaUnit], t: float) -> list[MediaUnit]:
    out = []
    for u in units:
        out.append(u)
        if u.time >= t:
            break
    return out


# -- failures -----------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    src = Source(str(tmp_path / "nope.mp4"), realtime=False)
    with pytest.raises(SourceError) as info:
        src.open()
    assert str(info.value).startswith("source not found")
    assert "nope.mp4" in str(info.value)


@pytest.mark.parametrize("name", ["corrupt.mp4", "truncated.mp4"])
def test_corrupt_and_truncated_files(media: Path, name: str) -> None:
    src = Source(str(media / name), realtime=False, loop=False)
    with pytest.raises(SourceError) as info:
        src.open()
        read_all(src)
    assert "invalid data" in str(info.value)


def test_file_without_video(media: Path) -> None:
    src = Source(str(media / "audio.m4a"), realtime=False)
    with pytest.raises(SourceError, match="no video stream"):
        src.open()


def test_bad_lavfi_graph() -> None:
    with pytest.raises(SourceError):
        Source("lavfi:nosuchfilter=1", realtime=False).open()


def test_units_before_open() -> None:
    src = Source(LAVFI, realtime=False)
    with pytest.raises(SourceError, match="not open"):
        next(iter(src.units()))


def test_network_urls_are_neither_looped_nor_paced() -> None:
    assert is_network("udp://239.0.0.1:1234") and is_network("srt://h:1") and is_network("rtsp://h/x")
    assert not is_network("/data/x.mp4") and not is_network(LAVFI)
    s = Source("udp://127.0.0.1:9", loop=True, realtime=True)
    assert not s.loop and not s.realtime


# -- streams and units --------------------------------------------------------------------
def test_file_streams_and_units(media: Path) -> None:
    src = Source(str(media / "clip.mp4"), realtime=False, loop=False)
    streams = src.open()
    assert streams.generation == 1
    assert streams.video.codec == "h264" and streams.video.extradata
    assert (streams.video.width, streams.video.height) == (160, 120)
    assert streams.video.fps == pytest.approx(30.0)
    assert streams.audio is not None and streams.audio.codec == "aac" and streams.audio.sample_rate == 48000
    units = read_all(src)
    video = [u for u in units if u.kind == "video"]
    assert len(video) == 45  # 1.5 s at 30 fps
    assert video[0].time == 0.0 and video[0].keyframe
    assert sum(u.keyframe for u in video) == 1  # gop 60 > 45 frames
    assert sorted(u.time for u in video) == pytest.approx([i / 30 for i in range(45)], abs=1 / 90000)
    assert any(u.kind == "audio" for u in units)
    src.close()


def test_file_without_audio(media: Path) -> None:
    src = Source(str(media / "silent.mp4"), realtime=False, loop=False)
    streams = src.open()
    assert streams.audio is None
    assert {u.kind for u in read_all(src)} == {"video"}


def test_lavfi_frames_travel_as_raw_planes() -> None:
    src = Source(LAVFI, realtime=False)
    streams = src.open()
    assert streams.video.codec == "rawvideo" and streams.video.pix_fmt == "yuv420p"
    assert streams.audio is not None and streams.audio.codec.startswith("pcm_")
    units = take_until(src.units(), 0.5)
    video = [u for u in units if u.kind == "video"]
    assert all(len(u.data) == 160 * 120 * 3 // 2 and u.keyframe for u in video)
    src.close()


def test_times_are_on_the_90khz_clock() -> None:
    src = Source(LAVFI, realtime=False)
    src.open()
    for u in take_until(src.units(), 0.5):
        assert u.time * 90000 == pytest.approx(round(u.time * 90000), abs=1e-6)
    src.close()


# -- pacing and capture times -------------------------------------------------------------
def test_realtime_pacing() -> None:
    src = Source(LAVFI_VIDEO_ONLY, realtime=True)
    src.open()
    start = time.monotonic()
    units = take_until(src.units(), 1.0)
    elapsed = time.monotonic() - start
    src.close()
    assert units[-1].time >= 1.0
    assert elapsed >= 0.9, f"1 s of paced media read in {elapsed:.2f} s"


def test_unpaced_source_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    import orbitcast.media.source as source_mod

    slept: list[float] = []
    monkeypatch.setattr(source_mod.time, "sleep", lambda s: slept.append(s))
    src = Source(LAVFI_VIDEO_ONLY, realtime=False)
    src.open()
    take_until(src.units(), 2.0)
    src.close()
    assert slept == []


def test_paced_source_sleeps_for_the_media_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import orbitcast.media.source as source_mod

    slept: list[float] = []
    real_sleep = time.sleep
    me = threading.get_ident()

    def sleep(s: float) -> None:
        if threading.get_ident() == me:  # `time` is every module's: other threads' sleeps are not the source's
            slept.append(s)
        real_sleep(s)

    monkeypatch.setattr(source_mod.time, "sleep", sleep)
    src = Source(LAVFI_VIDEO_ONLY, realtime=True)
    src.open()
    units = take_until(src.units(), 0.5)
    src.close()
    assert units[-1].time >= 0.5
    assert 0.4 <= sum(slept) <= 0.5 + 1e-3


def test_capture_is_anchor_plus_media_time(media: Path) -> None:
    src = Source(str(media / "clip.mp4"), realtime=False, loop=True, clock=lambda: 1_700_000_000.0)
    for _ in range(2):
        src.open()
        units = read_all(src)
        for u in units:
            assert u.capture == pytest.approx(1_700_000_000.0 + u.time, abs=1e-6)
        src.end_session()


@pytest.mark.parametrize("realtime,attr", [(True, "REANCHOR_PACED_AFTER"), (False, "REANCHOR_AFTER")])
def test_capture_reanchors_after_a_stall(monkeypatch: pytest.MonkeyPatch, realtime: bool, attr: str) -> None:
    import orbitcast.media.source as source_mod

    assert getattr(source_mod, attr) > 0
    monkeypatch.setattr(source_mod, attr, 0.3)  # the real threshold, made short for the test
    src = Source(LAVFI_VIDEO_ONLY, realtime=realtime)
    src.open()
    it = src.units()
    first = next(it)
    assert first.capture == pytest.approx(time.time(), abs=0.4)
    time.sleep(0.8)  # the consumer stalls: the media falls behind the wall clock
    late = next(it)
    src.close()
    # not first.capture + 1/30: the capture time follows the wall clock again
    assert late.capture - first.capture > 0.5
    assert late.time - first.time == pytest.approx(1 / 30, abs=1e-3)
    # and says so (/api/feeds: input.dates): once, the dates moved ahead by what it was late
    assert src.reanchors == 1 and src.last_reanchor is not None
    assert src.last_reanchor["jump_s"] == pytest.approx(late.capture - (first.capture + 1 / 30), abs=2e-3)
    assert src.last_reanchor["media_time"] == pytest.approx(late.time, abs=1e-5)


def test_paced_source_a_little_late_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import orbitcast.media.source as source_mod

    monkeypatch.setattr(source_mod, "REANCHOR_PACED_AFTER", 5.0)
    src = Source(LAVFI_VIDEO_ONLY, realtime=True)
    src.open()
    it = src.units()
    first = next(it)
    time.sleep(0.3)  # late, below the threshold
    rest = [next(it) for _ in range(5)]
    src.close()
    for u in rest:  # evenly spaced program date-times: anchor + media time
        assert u.capture == pytest.approx(first.capture + u.time - first.time, abs=1e-6)
    assert src.reanchors == 0 and src.last_reanchor is None


# -- one timeline across loops and reopenings ---------------------------------------------
def test_loops_keep_one_timeline(media: Path) -> None:
    src = Source(str(media / "clip.mp4"), realtime=False, loop=True)
    all_units: list[MediaUnit] = []
    generations = []
    for _ in range(3):
        generations.append(src.open().generation)
        all_units += read_all(src)
        src.end_session()
    assert generations == [1, 2, 3]
    for kind in ("video", "audio"):
        times = [u.time for u in all_units if u.kind == kind]
        assert times == sorted(times), f"{kind} time went backwards"
        assert times[0] >= 0.0
    video = [u.time for u in all_units if u.kind == "video"]
    assert len(video) == 3 * 45
    # no gap and no overlap at the seams: every frame 1/30 s after the previous one
    steps = np.diff(np.array(video))
    assert steps == pytest.approx(np.full(len(steps), 1 / 30), abs=2 / 90000)
    # keyframe at the start of every loop
    assert [u.time for u in all_units if u.kind == "video" and u.keyframe] == pytest.approx([0.0, 1.5, 3.0], abs=1e-4)


def test_reopen_of_another_file_continues_the_timeline(media: Path) -> None:
    src = Source(str(media / "clip.mp4"), realtime=False, loop=False)
    src.open()
    first = read_all(src)
    src.end_session()
    src.url = str(media / "silent.mp4")
    streams = src.open()
    assert streams.generation == 2 and streams.audio is None
    second = read_all(src)
    last_video = max(u.time for u in first if u.kind == "video")
    assert min(u.time for u in second) == pytest.approx(last_video + 1 / 30, abs=1e-4)


def test_a_source_that_waits_for_its_sender_is_told_from_one_it_reaches() -> None:
    """The pipeline gives a feed a standby reader only where a second one could read it too."""
    from orbitcast.media.source import listen_address

    assert listen_address("rtmp://0.0.0.0:1935/live/cam?listen=1") == "0.0.0.0:1935"
    assert listen_address("rtmp://0.0.0.0:1935/live/cam", {"listen": "1"}) == "0.0.0.0:1935"
    assert listen_address("srt://0.0.0.0:9000?mode=listener") == "0.0.0.0:9000"
    assert listen_address("udp://127.0.0.1:5000") == "127.0.0.1:5000"
    for reached in ("lavfi:testsrc2=size=320x240:rate=25", "srt://relay.example:9000", "rtsp://cam.example/stream",
                    "https://origin.example/live/index.m3u8", "/media/clip.mp4"):
        assert listen_address(reached) is None, reached
