"""Which decoded pictures go to analysis, and what happens when analysis falls behind.

The live path decides in microseconds and never waits: `FrameSampler` picks pictures by media
time at `sample_fps`, and `SampleGate` lets at most `limit` samples be in flight to the
analyser; any more are dropped and counted (a slow reader loses samples, the live stream
loses nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    """A sampled picture on its way to the analyser (what crosses the process boundary)."""

    feed: str
    time: float  # media seconds on the feed's timeline
    capture: float  # unix seconds
    picture: np.ndarray  # (H, W, 3) uint8 RGB


def scaled_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """Even width and height no wider than `target_width`, aspect kept (never scaled up)."""
    if width <= target_width:
        w, h = width, height
    else:
        w, h = target_width, height * target_width / width
    return max(2, int(w) // 2 * 2), max(2, round(h / 2) * 2)


class FrameSampler:
    """Takes a picture at most every 1/sample_fps seconds of media time, on a grid
    (k / sample_fps), so samples fall at the same places whatever the frame rate. Media time
    going backwards (a new input session, a loop) restarts the grid."""

    def __init__(self, sample_fps: float) -> None:
        if not sample_fps > 0:
            raise ValueError("sample_fps must be positive")
        self.period = 1.0 / sample_fps
        self._next: float | None = None

    def due(self, t: float) -> bool:
        if self._next is not None and t < self._next - self.period:
            self._next = None  # went back in time
        if self._next is not None and t < self._next - 1e-9:
            return False
        self._next = (math.floor(t / self.period + 1e-9) + 1) * self.period
        return True


class SampleGate:
    """Bounded hand-off: `admit` says whether one more sample may go (and counts a drop when
    not), `done` gives a place back. The owner calls `done` for each sample it saw finish."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.in_flight = 0
        self.sent = 0
        self.dropped = 0

    def admit(self) -> bool:
        if self.in_flight >= self.limit:
            self.dropped += 1
            return False
        self.in_flight += 1
        self.sent += 1
        return True

    def drop(self) -> None:
        """A sample lost without being offered (no analyser to take it)."""
        self.dropped += 1

    def done(self, count: int = 1) -> None:
        self.in_flight = max(0, self.in_flight - count)

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "dropped": self.dropped, "in_flight": self.in_flight}
