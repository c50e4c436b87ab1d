"""A feed's hand-offs from its transcoder to its packager that are still in flight.

The feed forgets the units of a seq (ReplayBuffer) once the transcoder says it is finished in
every rung. Finished is not enough: a hand-off still in flight dies with the transcoder's
process, and the member that takes the feed over must make that seq again. So the seq the feed
is told is the one finished with the last hand-off the packager took (a seq lost this way was
listed as a gap, found by tests/e2e/test_chaos_cluster.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

Ref = TypeVar("Ref")


class HandOffs(Generic[Ref]):
    def __init__(self, limit: int) -> None:
        self.limit = limit  # more than this in flight: the transcoder waits (backpressure)
        self._pending: deque[tuple[Ref, int | None]] = deque()
        self._taken: int | None = None

    def add(self, ref: Ref, through: int | None) -> None:
        """A hand-off sent; `through`: the highest seq finished in every rung with it."""
        self._pending.append((ref, through))

    def settle(self, done: Callable[[Ref], bool], get: Callable[[Ref], object]) -> None:
        """Collect the hand-offs the packager took, oldest first (`get` raises what it raised),
        and wait for the oldest while more than `limit` are in flight."""
        while len(self._pending) > self.limit or (self._pending and done(self._pending[0][0])):
            ref, through = self._pending.popleft()
            get(ref)  # a failed hand-off is raised once; its seqs stay in the feed's replay
            self._taken = through

    def taken_through(self, finished: int | None) -> int | None:
        """What the feed may forget: `finished` (the transcoder's) once nothing is in flight."""
        return self._taken if self._pending else finished

    def __len__(self) -> int:
        return len(self._pending)
