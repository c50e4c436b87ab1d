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


class NotOpenHere(RuntimeError):
    """A member refused a batch of a feed it was not opened for: it was started again since the
    feed sent it (its queue outlived the process), or the batch is older than the replay that
    opened the feed here. The feed sends its replay again."""


class Openings:
    """Which of a feed's batches a member takes.

    Calls sent to a member that dies are queued by Ray while it restarts and reach the new,
    empty process; the first to come would open the feed in the middle of a segment and make
    that seq a second, shorter time (listed, but not what the ledger certified: found by
    tests/e2e/test_chaos_cluster.py). So only a batch that says it opens (the feed's first, and
    each replay after a member was lost) opens a feed here, and a batch numbered below the one
    that last opened it is from before that and refused too."""

    def __init__(self) -> None:
        self._opened_at: dict[str, int] = {}

    def check(self, feed: str, batch: int | None, opening: bool) -> None:
        """Raises NotOpenHere for a batch this member must not take."""
        number = batch if batch is not None else 0
        if opening:
            self._opened_at[feed] = number
            return
        at = self._opened_at.get(feed)
        if at is None:
            raise NotOpenHere(f"{feed}: not open on this member (it was started again)")
        if batch is not None and batch < at:
            raise NotOpenHere(f"{feed}: batch {batch} is older than the replay that opened it here ({at})")
