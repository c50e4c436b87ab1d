"""Per-picture results gathered into per-segment tags.

A picture belongs to segment floor(time / D), the transcoder's own rule (media/boundaries.py),
so tags and segments share one timeline without asking the transcoder.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..media.boundaries import segment_index
from .results import EXPRESSIONS, FrameAnalysis, SegmentSummary


def summarize(seq: int, frames: Iterable[FrameAnalysis]) -> SegmentSummary:
    """The tags of segment `seq` from its analysed pictures (see SegmentSummary)."""
    frames = list(frames)
    probs = [f.probabilities for fr in frames for f in fr.faces]
    captures = [fr.capture for fr in frames if fr.capture]
    start, end = (min(captures), max(captures)) if captures else (None, None)
    most = max((len(fr.faces) for fr in frames), default=0)
    if not probs:
        return SegmentSummary(seq=seq, frames=len(frames), faces=most, start=start, end=end)
    mean = np.mean(np.array(probs, np.float64), axis=0)
    top = int(np.argmax(mean))
    return SegmentSummary(
        seq=seq, frames=len(frames), faces=most, expression=EXPRESSIONS[top], confidence=float(mean[top]),
        probabilities={name: float(p) for name, p in zip(EXPRESSIONS, mean)}, start=start, end=end,
    )


class SegmentTagger:
    """Gathers a feed's analysed pictures and closes a segment's summary once a picture of a
    later segment arrives (pictures come in media-time order; a late one of a closed segment is
    dropped, since its tags are already out)."""

    def __init__(self, segment_duration: float) -> None:
        if segment_duration <= 0:
            raise ValueError("segment_duration must be positive")
        self.segment_duration = segment_duration
        self._seq: int | None = None
        self._frames: list[FrameAnalysis] = []
        self.late = 0

    def add(self, frame: FrameAnalysis) -> list[SegmentSummary]:
        seq = segment_index(frame.time, self.segment_duration)
        done: list[SegmentSummary] = []
        if self._seq is not None and seq < self._seq:
            # An earlier segment: the input started again (a loop, a new session) or the
            # picture is late. Media time going back far means a new timeline: start over.
            if self._seq - seq > 2:
                done = self.close()
            else:
                self.late += 1
                return []
        if self._seq is not None and seq > self._seq:
            done = self.close()
        self._seq = seq
        self._frames.append(frame)
        return done

    def close(self) -> list[SegmentSummary]:
        """The summary of the open segment (if any), closing it."""
        if self._seq is None:
            return []
        out = [summarize(self._seq, self._frames)]
        self._seq, self._frames = None, []
        return out
