"""What a feed keeps so that a transcoder that dies loses no segment.

A segment is finished only when the next one begins, so a pool member that dies takes the
segment it was filling with it. The feed keeps every unit from the first unfinished segment
on and hands them all to the member that takes the feed over, which then makes that segment
again, whole, with the same seq and the same boundaries.
"""

from __future__ import annotations

from collections import deque

from .boundaries import segment_index
from .units import MediaUnit


class ReplayBuffer:
    def __init__(self, segment_duration: float) -> None:
        self.segment_duration = segment_duration
        self._units: deque[MediaUnit] = deque()

    def add(self, units: list[MediaUnit]) -> None:
        self._units.extend(units)

    def finished_through(self, seq: int | None) -> None:
        """Every rung has finished `seq`: forget the units of it and of the segments before."""
        if seq is None:
            return
        while self._units and segment_index(self._units[0].time, self.segment_duration) <= seq:
            self._units.popleft()

    def pending(self) -> list[MediaUnit]:
        """Units of the unfinished segments, oldest first, to hand to a new transcoder."""
        return list(self._units)

    def __len__(self) -> int:
        return len(self._units)
