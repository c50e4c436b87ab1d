"""Interlaced pictures made progressive before the ladder scales them.

Broadcast sources (MPEG-2 from a satellite receiver, 1080i H.264) carry two fields per
picture, taken 1/50 or 1/60 s apart. Scaled as they are, every moving edge shows the comb of
the two fields, and the x264 encoder spends its bits on that comb at every rung; players do
not deinterlace a progressive-flagged HLS stream. So pictures the decoder marks interlaced go
through FFmpeg's `bwdif` (motion-adaptive, the better of the two in FFmpeg's tree, and
cheaper than `yadif` with its edge check), one picture out per picture in, the frame rate kept.

The filter looks one picture ahead, so a feed whose pictures are interlaced is delayed by one
frame period (40 ms at 25i). Progressive feeds never enter it: nothing changes for them. Once
a session showed an interlaced picture, all its pictures go through the filter
(`deint=interlaced` passes progressive ones unchanged), so mixed sources keep their order.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.error
import av.filter
from av.video.frame import VideoFrame

FILTER = "bwdif"
OPTIONS = "mode=send_frame:parity=auto:deint=interlaced"


class Deinterlacer:
    """Feed decoded pictures in presentation order; get progressive ones, timestamps kept (in
    `time_base`). `flush` at the end of a session returns the picture the filter still holds."""

    def __init__(self, time_base: Fraction) -> None:
        self.time_base = time_base
        self.pictures = 0  # pictures deinterlaced (or passed through the filter) so far
        self._graph: av.filter.Graph | None = None
        self._shape: tuple[int, int, str] | None = None

    @property
    def active(self) -> bool:
        return self._graph is not None

    def push(self, frame: VideoFrame) -> list[VideoFrame]:
        if self._graph is None and not frame.interlaced_frame:
            return [frame]
        out: list[VideoFrame] = []
        shape = (frame.width, frame.height, frame.format.name)
        if self._graph is not None and shape != self._shape:
            out += self.flush()  # a new picture size: a graph for it
        if self._graph is None:
            self._graph, self._shape = self._build(frame), shape
        self._graph.push(frame)
        out += self._pull()
        return out

    def flush(self) -> list[VideoFrame]:
        if self._graph is None:
            return []
        self._graph.push(None)
        out = self._pull()
        self._graph = self._shape = None
        return out

    def _build(self, frame: VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                               time_base=self.time_base)
        deint = graph.add(FILTER, OPTIONS)
        sink = graph.add("buffersink")
        src.link_to(deint)
        deint.link_to(sink)
        graph.configure()
        return graph

    def _pull(self) -> list[VideoFrame]:
        assert self._graph is not None
        out: list[VideoFrame] = []
        while True:
            try:
                picture = self._graph.pull()
            except (av.error.BlockingIOError, BlockingIOError, av.error.EOFError):
                return out
            # bwdif may halve the time base (to allow a field rate): back to ours
            if picture.pts is not None and picture.time_base != self.time_base:
                picture.pts = round(picture.pts * picture.time_base / self.time_base)
            picture.time_base = self.time_base
            self.pictures += 1
            out.append(picture)
