"""The slate a feed shows while its input is lost: a "signal lost" card with the feed's name
and the UTC time, and silence (the transcoder fills the audio track when a feed has none).

`SlatePlayer` makes the card's frames on the feed's timeline, paced at real time, as raw
yuv420p planes (as lavfi's in-memory frames travel, see units.py), so the transcoder decodes
them with `rawvideo` like any other input. It starts where the lost input stopped and, once
due, first makes up the time the input has been away (at most `MAX_CATCH_UP`), so that the
output stays in step with the wall clock and a player at the live edge is not left behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

from .units import FeedStreams, MediaUnit, StreamInfo

DEFAULT_SIZE = (1280, 720)
DEFAULT_FPS = 30.0
# The slate keeps the lost input's rate within these bounds (a guessed rate can be absurd).
FPS_RANGE = (1.0, 60.0)
# Media the slate makes up at once for the time the input has been away; past that, the feed's
# timeline stays that much behind the wall clock (as a reconnect without a slate does).
MAX_CATCH_UP = 10.0
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
BACKGROUND = (20, 24, 38)
FOREGROUND = (235, 235, 235)
ACCENT = (230, 70, 60)


def slate_format(video: StreamInfo | None) -> tuple[int, int, float]:
    """Width, height and frame rate of the slate: those of the lost input, else 1280x720@30.
    Sizes are made even, as yuv420p planes need."""
    if video is None or video.width < 2 or video.height < 2:
        width, height = DEFAULT_SIZE
    else:
        width, height = video.width // 2 * 2, video.height // 2 * 2
    fps = video.fps if video is not None and video.fps > 0 else DEFAULT_FPS
    return width, height, min(FPS_RANGE[1], max(FPS_RANGE[0], fps))


def slate_streams(width: int, height: int, fps: float, generation: int) -> FeedStreams:
    """What the slate delivers: raw video only; the transcoder writes silence for the audio."""
    video = StreamInfo("video", "rawvideo", Fraction(1, 90000), None, width, height, "yuv420p", fps)
    return FeedStreams(video=video, audio=None, generation=generation)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / "DejaVuSans-Bold.ttf"
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


class SlateCard:
    """The card as yuv420p planes, drawn again only when the second shown changes."""

    def __init__(self, feed: str, width: int, height: int) -> None:
        self.feed = feed
        self.width, self.height = width, height
        # Sized to the picture, and small enough for the lines to fit a narrow one.
        self._big = _font(max(8, min(height // 9, width // 8)))
        self._small = _font(max(6, min(height // 20, width // 24)))
        self._shown: int | None = None
        self._planes = b""

    def planes(self, at: float) -> bytes:
        """The card at `at` (unix seconds, UTC) as one yuv420p frame."""
        second = int(at)
        if second != self._shown:
            self._planes = self._draw(second)
            self._shown = second
        return self._planes

    def _draw(self, second: int) -> bytes:
        img = Image.new("RGB", (self.width, self.height), BACKGROUND)
        draw = ImageDraw.Draw(img)
        when = datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        cx, cy = self.width / 2, self.height / 2
        draw.text((cx, cy - self.height * 0.12), "SIGNAL LOST", font=self._big, fill=ACCENT, anchor="mm")
        draw.text((cx, cy + self.height * 0.06), self.feed, font=self._small, fill=FOREGROUND, anchor="mm")
        draw.text((cx, cy + self.height * 0.18), when, font=self._small, fill=FOREGROUND, anchor="mm")
        # PyAV's conversion: the same limited-range planes lavfi's frames become (source.py).
        frame = av.VideoFrame.from_image(img).reformat(format="yuv420p")
        return frame.to_ndarray().tobytes()


class SlatePlayer:
    """The slate of one outage: `run` (in its own thread) waits until the slate is due, then
    hands batches to `deliver` at real time until `stop`. `next_time` is where the feed's
    timeline goes on after it."""

    def __init__(
        self,
        feed: str,
        video: StreamInfo | None,
        generation: int,
        deliver: Callable[[FeedStreams, list[MediaUnit]], None],
        *,
        timeline: Callable[[], float],
        lost_at: float,
        delay: float,
        clock: Callable[[], float] = time.time,
        batch_seconds: float = 0.2,
    ) -> None:
        width, height, self.fps = slate_format(video)
        self.streams = slate_streams(width, height, self.fps, generation)
        self.card = SlateCard(feed, width, height)
        self.deliver = deliver
        self.timeline = timeline  # read when the slate begins: the lost input's end
        self.lost_at = lost_at  # time.monotonic() of the input's last media
        self.delay = delay
        self.clock = clock
        self.frames_per_batch = max(1, round(batch_seconds * self.fps))
        self.next_time: float | None = None  # None until the slate has delivered a frame
        self.started_at: float | None = None  # clock() when the first frame was delivered
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        if self._halt.wait(max(0.0, self.lost_at + self.delay - time.monotonic())):
            return
        t0 = self.timeline()
        now = time.monotonic()
        # Media time t0 is "due" at the instant the input stopped: what is already due goes
        # out at once, in batches, and the rest at real time.
        anchor = max(self.lost_at, now - MAX_CATCH_UP)
        wall = self.clock() - (now - anchor)
        step = 1.0 / self.fps
        k = 0
        while True:
            last = k + self.frames_per_batch - 1
            if self._halt.wait(max(0.0, anchor + last * step - time.monotonic())):
                return
            batch = []
            for i in range(k, last + 1):
                t = round((t0 + i * step) * 90000) / 90000
                capture = wall + (t - t0)
                batch.append(MediaUnit("video", self.card.planes(capture), t, capture, True))
            self.deliver(self.streams, batch)
            self.next_time = round((batch[-1].time + step) * 90000) / 90000
            if self.started_at is None:
                self.started_at = self.clock()
            k = last + 1
