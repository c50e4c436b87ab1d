"""The live transcoder's side of the stage: a tap on its decoded pictures.

`FrameTap` is called with every decoded input picture (never the slate's) and keeps one every
1/sample_fps seconds of media time, scaled down and converted to RGB by swscale (under a
millisecond at 640x360), until the transcoder's actor takes them. It holds at most `keep`
samples: if nobody takes them the oldest go (counted), so the transcoder never grows or waits.
"""

from __future__ import annotations

from collections import deque

import av
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from .sampling import FrameSampler, Sample, scaled_size


class FrameTap:
    def __init__(self, feed: str, sample_fps: float, width: int = 640, keep: int = 4) -> None:
        self.feed = feed
        self.width = width
        self.sampler = FrameSampler(sample_fps)
        self._scaler = VideoReformatter()  # kept: a new swscale context costs milliseconds
        self._pending: deque[Sample] = deque(maxlen=keep)
        self.sampled = 0
        self.overwritten = 0
        self.errors = 0

    def __call__(self, frame: VideoFrame, time: float, capture: float) -> None:
        if not self.sampler.due(time):
            return
        w, h = scaled_size(frame.width, frame.height, self.width)
        try:
            rgb = self._scaler.reformat(frame, width=w, height=h, format="rgb24").to_ndarray()
        except (av.error.FFmpegError, ValueError):
            self.errors += 1  # a picture swscale cannot convert is not analysed; the feed goes on
            return
        if len(self._pending) == self._pending.maxlen:
            self.overwritten += 1
        self._pending.append(Sample(self.feed, time, capture, np.ascontiguousarray(rgb)))
        self.sampled += 1

    def stats(self) -> dict[str, int]:
        return {"sampled": self.sampled, "overwritten": self.overwritten, "errors": self.errors}

    def take(self) -> list[Sample]:
        out = list(self._pending)
        self._pending.clear()
        return out
