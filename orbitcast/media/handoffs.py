"""A feed's hand-offs from its transcoder to its packager that are still in flight.

The feed forgets the units of a seq (ReplayBuffer) once the transcoder says it is finished in
every rung. Finished is not enough: a hand-off still in flight dies with the transcoder's
process, and the member that takes the feed over must make that seq again. So the seq the feed
is told is the one finished with the last hand-off the packager took (a seq lost this way was
listed as a gap, found by tests/e2e/test_chaos_cluster.py).

When the packager itself dies, the hand-offs in flight to it are sent again, oldest first, to
its standby (orbitcast/standby.py) instead of waiting for Ray to start it again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Ref = TypeVar("Ref")
# Sent again this many times in a row without one taken: then the failure is the feed's (it
# makes the seqs again from its replay), as when there is no standby.
MAX_RESENDS = 4


class HandOffs(Generic[Ref]):
    def __init__(self, limit: int) -> None:
        self.limit = limit  # more than this in flight: the transcoder waits (backpressure)
        self._pending: deque[tuple[Ref, int | None, Any]] = deque()
        self._taken: int | None = None
        self._resends = 0  # in a row, since a hand-off was last taken

    def add(self, ref: Ref, through: int | None, payload: Any = None) -> None:
        """A hand-off sent; `through`: the highest seq finished in every rung with it;
        `payload`: what was sent, to send it again elsewhere."""
        self._pending.append((ref, through, payload))

    def send_again(self, send: Callable[[Any], Ref]) -> None:
        """Every hand-off in flight, oldest first, sent again by `send` (the packager they went
        to died: to its standby)."""
        self._resends += 1
        self._pending = deque((send(payload), through, payload) for _, through, payload in self._pending)

    def settle(self, done: Callable[[Ref], bool], get: Callable[[Ref], object],
               recover: Callable[[BaseException], Callable[[Any], Ref] | None] | None = None) -> None:
        """Collect the hand-offs the packager took, oldest first (`get` raises what it raised),
        and wait for the oldest while more than `limit` are in flight. `recover(err)`: for an
        error that says the hand-off never reached a live packager, where to send it and those
        after it again (None: not such an error, raised)."""
        while len(self._pending) > self.limit or (self._pending and done(self._pending[0][0])):
            ref, through, _ = self._pending[0]
            try:
                get(ref)
            except Exception as err:
                send = recover(err) if recover is not None and self._resends < MAX_RESENDS else None
                if send is None:
                    self._pending.popleft()  # raised once; its seqs stay in the feed's replay
                    raise
                self.send_again(send)
                continue
            self._pending.popleft()
            self._resends = 0
            self._taken = through

    def taken_through(self, finished: int | None) -> int | None:
        """What the feed may forget: `finished` (the transcoder's) once nothing is in flight."""
        return self._taken if self._pending else finished

    def __len__(self) -> int:
        return len(self._pending)
