"""Batches of one feed taken in the order the feed numbered them.

A feed hands its next batch to its transcoder while the one before is still being encoded
(actors/feed.py), so that reading and carrying a batch overlap with encoding the last one. The
transcoder runs its calls on a pool of threads, and two calls that arrive together may reach
the feed's lock in either order; a batch taken out of order would put media on the timeline
behind media already cut. `Turns` lets the calls of one feed in by their numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# How long a batch waits for the one before it. The feed has at most one batch in flight ahead
# of it, sent first on the same ordered channel, so it comes within milliseconds; this bounds
# the wait should it never come (a feed that moved here from a member that lived on).
WAIT_S = 1.0


class Turns:
    """One feed's batches, one at a time, in the order of their numbers."""

    def __init__(self, wait_s: float = WAIT_S) -> None:
        self._cond = threading.Condition()
        self._next: int | None = None  # the number due next; None until the first batch
        self.wait_s = wait_s

    @contextmanager
    def turn(self, number: int | None) -> Iterator[None]:
        """Hold the feed for batch `number` (None: unnumbered, whenever it comes). A number below
        the one due (the feed's numbering started again) goes in at once and resets it."""
        with self._cond:
            if number is not None and self._next is not None:
                self._cond.wait_for(lambda: self._next is None or number <= self._next, self.wait_s)
            try:
                yield
            finally:
                if number is not None:
                    self._next = number + 1
                self._cond.notify_all()
