"""What a feed hands to a transcoder: stream descriptions and timed media units.

Units cross process boundaries (Ray), so they hold plain bytes and numbers, never PyAV objects.
Sources whose demuxer yields in-memory frames (lavfi's `wrapped_avframe`) are sent as raw
planes, which the transcoder decodes with the `rawvideo`/PCM decoders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

Kind = Literal["video", "audio"]


@dataclass(frozen=True)
class StreamInfo:
    """Enough to build a decoder for one elementary stream in another process."""

    kind: Kind
    codec: str
    time_base: Fraction
    extradata: bytes | None = None
    width: int = 0
    height: int = 0
    pix_fmt: str | None = None
    fps: float = 0.0
    sample_rate: int = 0
    layout: str | None = None
    sample_format: str | None = None
    index: int = 0  # the stream's number in the source, for messages that name it


@dataclass(frozen=True)
class MediaUnit:
    """One compressed packet (or one raw frame) with its place on the feed's timeline.

    `time` is seconds on the feed's continuous media timeline (starts near 0, never goes back,
    survives loops and reconnects); `capture` is the wall-clock (UTC, unix seconds) at which
    that instant was captured, from the clock authority.
    """

    kind: Kind
    data: bytes = field(repr=False)
    time: float
    capture: float
    keyframe: bool = False


@dataclass(frozen=True)
class FeedStreams:
    """The streams a feed delivers: video always, audio when the source has it."""

    video: StreamInfo
    audio: StreamInfo | None = None
    generation: int = 0  # bumps on every (re)open; a transcoder rebuilds its decoders on change
