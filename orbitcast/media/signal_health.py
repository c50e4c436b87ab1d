"""Is the input's picture black or frozen, is its sound silent: the states an operator of a
relay needs to see first, since a feed can flow at full bitrate and still carry nothing.

`SignalHealth` is fed the input's decoded pictures (a sample every `SAMPLE_EVERY` seconds, as a
luma grid of about `GRID` pixels: `LumaSampler`) and the level of its decoded sound
(`peak_dbfs`).
The thresholds are those of FFmpeg's filters, so a reading can be checked with them:

- black (blackdetect): a picture is black when at least `BLACK_RATIO` of its pixels are darker
  than `BLACK_PIXEL` of the way from black to white (limited range: luma 16 + 0.10 * 219);
- frozen (freezedetect): the mean absolute difference of two samples' luma, as a fraction of
  full scale, is under `FREEZE_NOISE` (-60 dB);
- silent (silencedetect): every sample is quieter than `SILENCE_DB` (-60 dBFS), i.e. the peak.

A state is reported once its condition has lasted `hold` seconds (2 by default, as
freezedetect's and a broadcaster's usual alarm delay) and clears at the first sample without
it. Its `since` is when the condition began (capture time, unix seconds), not when the hold ran
out, so it says when the picture went black. Times are those of the media, so the detector
needs no clock and gives the same answer however fast the frames arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

BLACK_PIXEL = 0.10
BLACK_RATIO = 0.98
FREEZE_NOISE = 0.001
SILENCE_DB = -60.0
HOLD_S = 2.0
SAMPLE_EVERY = 0.25  # at most 4 pictures a second are looked at
GRID = (160, 90)  # a sampled picture is cut down to about this many columns and rows
_EPS = 1e-6  # media times are sums of frame durations: 8 x 0.25 s must count as 2 s

Picture = Literal["ok", "black", "frozen"]
Sound = Literal["ok", "silent", "none"]


@dataclass(frozen=True)
class Luma:
    """A picture's luma on a coarse grid, with where black and white lie on its scale."""

    pixels: np.ndarray  # 2-D, unsigned integers
    black: int  # code value of black: 16 in limited 8-bit range, 0 in full range
    white: int
    full_scale: int  # (1 << bits) - 1

    @property
    def black_below(self) -> float:
        return self.black + BLACK_PIXEL * (self.white - self.black)


def _full_range(frame: VideoFrame) -> bool:
    # AVCOL_RANGE_JPEG, or the yuvj formats that imply it (as blackdetect decides)
    return frame.format.name.startswith("yuvj") or int(frame.color_range or 0) == 2


class LumaSampler:
    """Cuts a decoded picture down to its luma on about a `grid` of pixels: every n-th pixel
    of every n-th row of the decoder's own luma plane (no conversion of the picture), or, for a
    format without one (RGB, packed YUV), a small grey picture from swscale's nearest-neighbour
    scaler, which is kept (a new scaler context costs milliseconds)."""

    def __init__(self, grid: tuple[int, int] = GRID) -> None:
        self.grid = grid
        self._scaler = VideoReformatter()

    def __call__(self, frame: VideoFrame) -> Luma:
        fmt = frame.format
        width, height = frame.width, frame.height
        step = max(1, math.ceil(max(width / self.grid[0], height / self.grid[1])))
        first = fmt.components[0]
        planar_luma = (
            first.is_luma and first.plane == 0 and first.bits <= 16
            and not any(c.plane == 0 for c in fmt.components[1:])
            # MSB-aligned high-depth formats (p010, p016) keep their bits at the top: not here
            and fmt.name.startswith(("yuv", "gray", "nv12", "nv21", "nv16", "nv24", "nv42"))
        )
        if not planar_luma:
            small = self._scaler.reformat(
                frame, width=max(1, width // step), height=max(1, height // step), format="gray",
                interpolation="POINT",
            )
            plane = small.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            return Luma(rows[:, : small.width].copy(), 0, 255, 255)  # swscale's grey is full range
        bits = first.bits
        dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype(">u2" if fmt.name.endswith("be") else "<u2")
        plane = frame.planes[0]
        rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        # The decoder may reuse its buffer for the next picture: keep a copy of the few pixels.
        pixels = np.ascontiguousarray(rows[:height:step, :width:step])
        full_scale = (1 << bits) - 1
        if _full_range(frame):
            return Luma(pixels, 0, full_scale, full_scale)
        shift = bits - 8
        return Luma(pixels, 16 << shift, 235 << shift, full_scale)


def peak_dbfs(frame: AudioFrame) -> float:
    """The frame's loudest sample in dB below full scale (-inf for digital silence)."""
    samples = frame.to_ndarray()
    if samples.size == 0:
        return -math.inf
    name = frame.format.name.rstrip("p")
    if samples.dtype.kind == "f":
        peak = float(max(samples.max(), -samples.min()))
    elif name == "u8":
        peak = float(np.abs(samples.astype(np.int16) - 128).max()) / 128
    else:
        scale = float(np.iinfo(samples.dtype).max) + 1
        peak = max(int(samples.max()), -int(samples.min())) / scale
    return 20 * math.log10(peak) if peak > 0 else -math.inf


class _Condition:
    """A condition on the media that counts once it has lasted `hold` seconds."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.since: float | None = None  # when it began
        self.until: float | None = None  # the newest media that still had it

    def update(self, present: bool, start: float, end: float) -> None:
        if not present:
            self.since = self.until = None
            return
        if self.since is None:
            self.since = start
        self.until = end

    @property
    def held(self) -> bool:
        return self.since is not None and self.until is not None and self.until - self.since >= self.hold - _EPS


class SignalHealth:
    """The picture and sound states of one input session. Feed it decoded frames
    (`video_frame`, `audio_frame`), or their measures (`picture` when `picture_due` says so,
    `sound` for every sound frame); `reset` when another session (another input) begins."""

    def __init__(self, hold: float = HOLD_S, sample_every: float = SAMPLE_EVERY) -> None:
        if hold < 0 or sample_every <= 0:
            raise ValueError("hold must be >= 0 and sample_every > 0 seconds")
        self.hold = hold
        self.sample_every = sample_every
        self._luma = LumaSampler()
        self.reset(has_audio=True)

    def reset(self, has_audio: bool) -> None:
        self.has_audio = has_audio
        self._black = _Condition(self.hold)
        self._frozen = _Condition(self.hold)
        self._silent = _Condition(self.hold)
        self._previous: Luma | None = None
        self._sampled_at: float | None = None
        self._first_at: float | None = None  # the session's first picture
        self._unreadable = False
        self._picture: tuple[Picture, float] | None = None
        self._sound: tuple[Sound, float] | None = None

    def video_frame(self, frame: VideoFrame, at: float) -> None:
        """A decoded picture captured at `at`: looked at only when a sample is due."""
        if self._unreadable or not self.picture_due(at):
            return
        try:
            luma = self._luma(frame)
        except (ValueError, av.error.FFmpegError):
            # A picture format this cannot read must not stop the feed: no picture state then.
            self._unreadable = True
            return
        self.picture(luma, at)

    def audio_frame(self, frame: AudioFrame, at: float) -> None:
        """A decoded sound frame that starts at `at`."""
        if frame.samples and frame.sample_rate:
            self.sound(peak_dbfs(frame), at, frame.samples / frame.sample_rate)

    def picture_due(self, at: float) -> bool:
        """Whether a picture at `at` should be looked at (at most one per `sample_every`)."""
        return self._sampled_at is None or at - self._sampled_at >= self.sample_every - _EPS

    def picture(self, luma: Luma, at: float) -> None:
        """A sampled picture, captured at `at` (unix seconds)."""
        pixels = luma.pixels
        black = np.count_nonzero(pixels < luma.black_below) >= BLACK_RATIO * pixels.size
        self._black.update(black, at, at)
        prev = self._previous
        if prev is not None and prev.pixels.shape == pixels.shape and self._sampled_at is not None:
            diff = np.abs(pixels.astype(np.int32) - prev.pixels).mean() / luma.full_scale
            self._frozen.update(diff < FREEZE_NOISE, self._sampled_at, at)
        else:
            self._frozen.update(False, at, at)
        self._previous, self._sampled_at = luma, at
        if self._first_at is None:
            self._first_at = at
        state: Picture
        if self._black.held:
            state, since = "black", self._black.since
        elif self._frozen.held:
            state, since = "frozen", self._frozen.since
        else:
            state, since = "ok", at
        self._picture = _next(self._picture, state, since)  # type: ignore[arg-type]

    def sound(self, level_dbfs: float, at: float, duration: float) -> None:
        """A sound frame's peak level; it starts at `at` and lasts `duration` seconds."""
        self._silent.update(level_dbfs < SILENCE_DB, at, at + duration)
        state: Sound = "silent" if self._silent.held else "ok"
        since = self._silent.since if state == "silent" else at
        self._sound = _next(self._sound, state, since)  # type: ignore[arg-type]

    def snapshot(self) -> dict:
        """`picture` ("ok", "black", "frozen"; None before the first picture), `sound` ("ok",
        "silent"; "none" when the input has no audio; None before its first sound), and when
        each began (`picture_since`, `sound_since`, unix seconds)."""
        picture, picture_since = self._picture if self._picture else (None, None)
        if not self.has_audio:
            # No track at all: "none" from the session's first picture on.
            sound, sound_since = ("none", self._first_at) if self._first_at is not None else (None, None)
        else:
            sound, sound_since = self._sound if self._sound else (None, None)
        return {
            "picture": picture, "picture_since": _rounded(picture_since),
            "sound": sound, "sound_since": _rounded(sound_since),
        }


NO_SIGNAL: dict = {"picture": None, "picture_since": None, "sound": None, "sound_since": None}


def _next(current: tuple[str, float] | None, state: str, since: float | None) -> tuple[str, float]:
    """Keep the time a state began while it lasts."""
    if current is not None and current[0] == state:
        return current
    assert since is not None
    return state, since


def _rounded(t: float | None) -> float | None:
    return None if t is None else round(t, 3)
