"""Black, frozen and silent input: pictures and sound made by FFmpeg's own test sources (lavfi,
through PyAV) and numpy, judged by `SignalHealth` alone, then through the real decoding path
(`LiveTranscoder`) and a feed that loses its input to a slate (`FeedRunner`), as /api/feeds
shows it."""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from orbitcast.config import FeedConfig, LadderConfig, Rung
from orbitcast.backoff import Backoff
from orbitcast.media.feed_runner import FeedRunner
from orbitcast.media.input_stats import InputMeter
from orbitcast.media.signal_health import NO_SIGNAL, LumaSampler, SignalHealth, peak_dbfs
from orbitcast.media.slate import SlateCard, slate_streams
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.media.units import FeedStreams, MediaUnit
from tests.conftest import reserved_port

T0 = 1_700_000_000.0  # capture time of the first frame
FPS = 25


def lavfi_video(graph: str, seconds: float) -> list[av.VideoFrame]:
    with av.open(graph, format="lavfi") as src:
        return list(itertools.islice(src.decode(video=0), round(seconds * FPS)))


def lavfi_audio(graph: str, seconds: float) -> list[av.AudioFrame]:
    with av.open(graph, format="lavfi") as src:
        frames: list[av.AudioFrame] = []
        for frame in src.decode(audio=0):
            frames.append(frame)
            if sum(f.samples for f in frames) >= seconds * frame.sample_rate:
                return frames
    return frames


@pytest.fixture(scope="module")
def moving() -> list[av.VideoFrame]:
    return lavfi_video(f"testsrc2=size=320x180:rate={FPS}", 6.0)


@pytest.fixture(scope="module")
def black() -> list[av.VideoFrame]:
    return lavfi_video(f"color=c=black:size=320x180:rate={FPS}", 4.0)


def show(health: SignalHealth, frames: list[av.VideoFrame], start: float) -> Iterator[tuple[float, dict]]:
    """Feeds frames at FPS from `start`; yields (capture time, states) after each."""
    for i, frame in enumerate(frames):
        at = start + i / FPS
        health.video_frame(frame, at)
        yield at, health.snapshot()


def first_time(seen: Iterator[tuple[float, dict]], key: str, value: str) -> tuple[float, dict] | None:
    return next(((at, s) for at, s in seen if s[key] == value), None)


# -- the picture ----------------------------------------------------------------------------------
def test_nothing_is_claimed_before_the_first_picture() -> None:
    assert SignalHealth().snapshot() == NO_SIGNAL


def test_a_black_picture_is_black_after_the_hold_and_ok_when_a_real_picture_returns(
    moving: list[av.VideoFrame], black: list[av.VideoFrame],
) -> None:
    health = SignalHealth()  # 2 s
    seen = list(show(health, black, T0))
    early = [s["picture"] for at, s in seen if at < T0 + 1.9]
    assert early and set(early) == {"ok"}  # not yet: it may be a fade
    at, state = first_time(iter(seen), "picture", "black") or pytest.fail("never black")
    assert T0 + 2.0 <= at <= T0 + 2.0 + 0.25 + 1 / FPS  # within one sample of the hold
    assert state["picture_since"] == T0  # since the picture went black, not since the alarm
    assert seen[-1][1]["picture"] == "black" and seen[-1][1]["picture_since"] == T0

    back = T0 + len(black) / FPS
    at, state = first_time(show(health, moving[:FPS], back), "picture", "ok") or pytest.fail("never ok again")
    assert at - back <= 0.25  # the first sample of a real picture clears it
    assert state["picture_since"] == pytest.approx(at)


def test_a_still_picture_is_frozen_and_a_moving_one_stays_ok(moving: list[av.VideoFrame]) -> None:
    health = SignalHealth()
    states = [s for _, s in show(health, moving, T0)]
    assert {s["picture"] for s in states} == {"ok"}
    assert {s["picture_since"] for s in states} == {T0}  # never left ok

    still = SignalHealth()
    seen = list(show(still, [moving[0]] * (4 * FPS), T0))
    at, state = first_time(iter(seen), "picture", "frozen") or pytest.fail("never frozen")
    assert T0 + 2.0 <= at <= T0 + 2.3 and state["picture_since"] == T0
    assert seen[-1][1]["picture"] == "frozen"


def test_the_hold_is_configurable(black: list[av.VideoFrame]) -> None:
    at, _ = first_time(show(SignalHealth(hold=0.5), black, T0), "picture", "black") or pytest.fail("never black")
    assert T0 + 0.5 <= at <= T0 + 0.8


def test_only_a_few_pictures_a_second_are_looked_at(moving: list[av.VideoFrame]) -> None:
    health = SignalHealth(sample_every=0.25)
    looked = 0
    for i, frame in enumerate(moving[: 2 * FPS]):
        looked += health.picture_due(T0 + i / FPS)
        health.video_frame(frame, T0 + i / FPS)
    assert looked == 8  # 25 fps for 2 s: one picture in every quarter second


def yuv(luma: np.ndarray) -> av.VideoFrame:
    """A yuv420p picture (limited range, grey) with this luma plane."""
    h, w = luma.shape
    planes = np.concatenate([luma.reshape(-1), np.full(h * w // 2, 128, np.uint8)]).reshape(h * 3 // 2, w)
    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


def test_grain_below_the_thresholds_does_not_flap() -> None:
    """A black picture with grain under the black level, and a still one whose encoder noise
    changes a tenth of its pixels by one level each time: they stay black and frozen, and
    their `since` never moves."""
    rng = np.random.default_rng(3)
    health = SignalHealth(hold=1.0)
    grain = [yuv(rng.integers(16, 30, (180, 320), dtype=np.uint8)) for _ in range(3 * FPS)]
    states = [s for at, s in show(health, grain, T0) if at >= T0 + 1.0 + 0.25]  # the hold and a sample
    assert {(s["picture"], s["picture_since"]) for s in states} == {("black", T0)}

    still = rng.integers(40, 220, (180, 320)).astype(np.int16)
    noisy = []
    for _ in range(6 * FPS):
        flip = (rng.random(still.shape) < 0.1) * rng.choice([-1, 1], still.shape)
        noisy.append(yuv(np.clip(still + flip, 0, 255).astype(np.uint8)))
    health = SignalHealth(hold=1.0)
    states = [s for at, s in show(health, noisy, T0) if at >= T0 + 1.0 + 0.25]
    assert {(s["picture"], s["picture_since"]) for s in states} == {("frozen", T0)}

    # The same grain, ten times stronger, is a (poor) moving picture: never frozen.
    moving = [yuv(np.clip(still + rng.integers(-4, 5, still.shape), 0, 255).astype(np.uint8)) for _ in range(3 * FPS)]
    assert {s["picture"] for _, s in show(SignalHealth(hold=1.0), moving, T0)} == {"ok"}


@pytest.mark.parametrize("fmt", ["yuv420p", "yuvj420p", "yuv420p10le", "nv12", "yuv444p", "rgb24", "gbrp"])
def test_black_is_told_from_a_dark_picture_in_every_pixel_format(fmt: str) -> None:
    """Decoders hand pictures in many formats; black is where blackdetect puts it in each (10 %
    of the way from black to white, in the format's own range and bit depth)."""
    def judged(rgb: int) -> str | None:
        image = np.full((180, 320, 3), rgb, np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=fmt)
        health = SignalHealth(hold=0.0)
        health.video_frame(frame, T0)
        return health.snapshot()["picture"]

    assert judged(0) == "black"
    assert judged(12) == "black"  # 5 % grey: black to blackdetect
    assert judged(60) == "ok"  # a dim but real picture


def test_the_sampler_reads_about_160_by_90_pixels_of_any_size(moving: list[av.VideoFrame]) -> None:
    sampler = LumaSampler()
    for w, h in [(1920, 1080), (3840, 2160), (318, 178), (160, 90), (64, 48)]:
        luma = sampler(moving[0].reformat(width=w, height=h))
        rows, cols = luma.pixels.shape
        assert (80 <= cols <= 160 or cols == w) and (45 <= rows <= 90 or rows == h), (w, h, luma.pixels.shape)


# -- the sound -----------------------------------------------------------------------------------
def hear(health: SignalHealth, frames: list[av.AudioFrame], start: float) -> list[tuple[float, dict]]:
    seen, at = [], start
    for frame in frames:
        health.audio_frame(frame, at)
        at += frame.samples / frame.sample_rate
        seen.append((at, health.snapshot()))
    return seen


def tone(db: float, seconds: float, fmt: str = "fltp", freq: float = 1000.0,
         noise: bool = False) -> list[av.AudioFrame]:
    rng = np.random.default_rng(5)
    amplitude = 10 ** (db / 20)
    frames = []
    for k in range(math.ceil(seconds * 48000 / 1024)):
        t = (np.arange(1024) + k * 1024) / 48000
        wave = rng.uniform(-1, 1, 1024) if noise else np.sin(2 * math.pi * freq * t)
        x = (amplitude * wave).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        frames.append(frame if fmt == "fltp" else _convert(frame, fmt))
    return frames


def _convert(frame: av.AudioFrame, fmt: str) -> av.AudioFrame:
    out = av.AudioResampler(format=fmt, layout="stereo", rate=48000).resample(frame)
    assert len(out) == 1
    return out[0]


@pytest.mark.parametrize("fmt", ["fltp", "s16", "s32p", "dbl"])
def test_the_peak_level_is_in_dbfs_in_every_sample_format(fmt: str) -> None:
    assert peak_dbfs(tone(-20.0, 0.1, fmt)[1]) == pytest.approx(-20.0, abs=0.1)
    assert peak_dbfs(tone(-90.0, 0.1, "fltp")[1]) == pytest.approx(-90.0, abs=0.1)


def test_silence_is_silent_after_the_hold_and_a_1khz_tone_is_ok() -> None:
    health = SignalHealth()
    quiet = lavfi_audio("anullsrc=r=48000:cl=stereo", 3.0)  # FFmpeg's own silence (u8)
    seen = hear(health, quiet, T0)
    assert {s["sound"] for at, s in seen if at < T0 + 1.95} == {"ok"}
    at, state = next((at, s) for at, s in seen if s["sound"] == "silent")
    assert T0 + 2.0 <= at <= T0 + 2.05 and state["sound_since"] == T0

    back = seen[-1][0]
    sine = lavfi_audio("sine=frequency=1000:sample_rate=48000", 2.0)  # -18 dBFS (s16, mono)
    seen = hear(health, sine, back)
    assert seen[0][1]["sound"] == "ok" and seen[0][1]["sound_since"] == pytest.approx(back)
    assert {s["sound"] for _, s in seen} == {"ok"}


def test_hiss_below_the_threshold_stays_silent_and_above_it_stays_ok() -> None:
    health = SignalHealth()
    seen = hear(health, tone(-70.0, 5.0, noise=True), T0)
    assert {(s["sound"], s["sound_since"]) for at, s in seen if at >= T0 + 2.05} == {("silent", T0)}
    seen = hear(SignalHealth(), tone(-50.0, 5.0, noise=True), T0)
    assert {s["sound"] for _, s in seen} == {"ok"}


def test_an_input_without_audio_has_no_sound(moving: list[av.VideoFrame]) -> None:
    health = SignalHealth()
    health.reset(has_audio=False)
    assert health.snapshot()["sound"] is None  # nothing seen yet
    list(show(health, moving[:10], T0))
    assert health.snapshot()["sound"] == "none" and health.snapshot()["sound_since"] == T0


def test_the_meter_shows_the_states_of_the_current_session_only() -> None:
    meter = InputMeter("udp://0.0.0.0:5000")
    assert {k: meter.snapshot(T0)[k] for k in NO_SIGNAL} == NO_SIGNAL
    meter.signal({"picture": "black", "picture_since": T0, "sound": "silent", "sound_since": T0 + 0.5})
    shown = meter.snapshot(T0 + 3)
    assert (shown["picture"], shown["picture_since"], shown["sound"], shown["sound_since"]) == (
        "black", T0, "silent", T0 + 0.5)
    meter.end_session()  # the input went away
    assert {k: meter.snapshot(T0 + 4)[k] for k in NO_SIGNAL} == NO_SIGNAL


# -- through the decoding path --------------------------------------------------------------------
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg on PATH")
LADDER = LadderConfig(rungs=(Rung(name="lo", width=160, height=90, video_bitrate=100_000),), preset="ultrafast")


@pytest.fixture(scope="module")
def dark_then_live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """H.264 + AAC in MPEG-TS, as a relay sends it: 3 s of black and silence, then 3 s of
    testsrc2 and a 1 kHz tone."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs Debian's ffmpeg on PATH")
    path = tmp_path_factory.mktemp("sh") / "dark_then_live.ts"
    video = "color=c=black:s=320x180:r=25:d=3[a];testsrc2=s=320x180:r=25:d=3[b];[a][b]concat=n=2:v=1:a=0"
    audio = ("anullsrc=r=48000:cl=stereo:d=3[a];sine=f=1000:r=48000:d=3,pan=stereo|c0=c0|c1=c0[b];"
             "[a][b]concat=n=2:v=0:a=1")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-f", "mpegts", str(path)],
        check=True, timeout=60,
    )
    return path


def transcode_watching(
    url: str, tr: LiveTranscoder | None = None, batch: int = 8,
) -> tuple[LiveTranscoder, list[tuple[float, dict]], float]:
    """Every unit of `url` through a LiveTranscoder; the input's states after each push, with
    the capture time of the newest unit pushed; and where the media's timeline ended."""
    src = Source(url, realtime=False, loop=False, clock=lambda: T0)
    streams = src.open()
    if tr is None:
        tr = LiveTranscoder("feed", LADDER, 1.0, 0.5, streams)
    else:
        tr.change_input(streams)
    seen: list[tuple[float, dict]] = []
    pending: list[MediaUnit] = []
    try:
        for unit in src.units():
            pending.append(unit)
            if len(pending) >= batch:
                tr.push(pending)
                seen.append((pending[-1].capture, tr.input_signal))
                pending = []
    except SourceEnded:
        pass
    tr.push(pending)
    src.end_session()  # closes it, and says where its timeline goes on
    return tr, seen, src.next_time


@needs_ffmpeg
def test_black_and_silence_come_out_of_the_real_decoding_path(dark_then_live: Path) -> None:
    _, seen, _ = transcode_watching(str(dark_then_live))
    start = seen[0][0]
    at_2_8 = next(s for at, s in seen if at >= start + 2.8)
    assert at_2_8["picture"] == "black" and at_2_8["picture_since"] == pytest.approx(start, abs=0.05)
    assert at_2_8["sound"] == "silent" and at_2_8["sound_since"] == pytest.approx(start, abs=0.1)
    end = seen[-1][1]
    assert end["picture"] == "ok" and end["picture_since"] == pytest.approx(start + 3.0, abs=0.3)
    assert end["sound"] == "ok" and end["sound_since"] == pytest.approx(start + 3.0, abs=0.1)
    # never frozen: the black part is black (which wins), then the picture moves
    assert all(s["picture"] != "frozen" for _, s in seen)


def slate_units(streams: FeedStreams, start: float, seconds: float) -> list[MediaUnit]:
    card = SlateCard("feed", streams.video.width, streams.video.height)
    return [MediaUnit("video", card.planes(T0 + start + i / 30), start + i / 30, T0 + start + i / 30, True)
            for i in range(round(seconds * 30))]


@needs_ffmpeg
def test_the_slate_is_not_judged_and_the_next_input_is_judged_afresh(dark_then_live: Path) -> None:
    tr, seen, end = transcode_watching(str(dark_then_live))
    assert seen[-1][1]["picture"] == "ok"
    # The input is lost: 4 s of the slate's still card, which would be "frozen" were it judged.
    streams = slate_streams(320, 180, 30.0, generation=tr.streams.generation + 1)
    tr.change_input(streams, analyse=False)
    t = end
    assert t > 5.5  # 6 s of media
    for i in range(0, 120, 6):
        tr.push(slate_units(streams, t + i / 30, 0.2))
        assert tr.input_signal == NO_SIGNAL
    # The input is back, black and without audio this time: judged from its own first picture.
    src = Source("lavfi:color=c=black:size=320x180:rate=25", realtime=False, loop=False, clock=lambda: T0 + 10,
                 start_time=t + 4.0)
    tr.change_input(src.open())
    units = list(itertools.islice(src.units(), 75))  # 3 s
    src.close()
    for i in range(0, len(units), 5):
        tr.push(units[i:i + 5])
    state = tr.input_signal
    assert state["picture"] == "black" and state["picture_since"] == pytest.approx(units[0].capture, abs=0.05)
    assert state["sound"] == "none"


# -- a feed that loses its input to the slate, as /api/feeds shows it ----------------------------
class WatchedTranscoding:
    """The feed actor's sink with a pool member's transcoder in this process: the slate is
    marked as such (`FeedRunner.is_slate`) and the input's states go to the feed's meter."""

    def __init__(self) -> None:
        self.runner: FeedRunner | None = None
        self.transcoder: LiveTranscoder | None = None
        self.slate_batches = 0

    def __call__(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        assert self.runner is not None
        slate = self.runner.is_slate(streams)
        self.slate_batches += slate
        if self.transcoder is None:
            self.transcoder = LiveTranscoder("relay", LADDER, 1.0, 0.5, streams, analyse=not slate)
        elif self.transcoder.streams.generation != streams.generation:
            self.transcoder.change_input(streams, analyse=not slate)
        self.transcoder.push(units)
        if not slate:
            self.runner.meter.signal(self.transcoder.input_signal)


def wait_for(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@needs_ffmpeg
def test_a_feed_shows_its_black_input_not_its_slate_in_api_feeds() -> None:
    port = reserved_port()
    sink = WatchedTranscoding()
    feed = FeedConfig(name="relay", source=f"tcp://127.0.0.1:{port}?listen=1", slate_after=0.2)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=Backoff(initial=0.02, maximum=0.1, jitter=0.0),
                        open_timeout=1.0)
    sink.runner = runner
    th = threading.Thread(target=runner.run, daemon=True)
    th.start()
    sender: subprocess.Popen | None = None
    try:
        # No sender yet: the slate runs, and says nothing of a picture that never came.
        wait_for(lambda: sink.slate_batches >= 5, timeout=10)
        assert runner.status()["input"]["picture"] is None and runner.status()["input"]["sound"] is None
        sender = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", "color=c=black:s=160x90:r=25:d=4",
             "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo:d=4",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "mpegts",
             f"tcp://127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_for(lambda: runner.status()["input"]["picture"] == "black", timeout=15)
        shown = runner.status()["input"]
        assert runner.health.state == "live" and shown["sound"] == "silent"
        assert shown["picture_since"] >= shown["last_media_at"] - 3.5
        sender.wait(timeout=20)
        # The sender left: its picture is unknown again while the slate covers for it.
        wait_for(lambda: runner.health.slate, timeout=10)
        assert runner.status()["input"]["picture"] is None
    finally:
        runner.stop()
        th.join(timeout=15)
        if sender is not None and sender.poll() is None:
            sender.kill()
