"""How the edge's live window reaches every Delivery replica: a versioned log of window
writes that replicas follow with long polls.

Each write the edge accepts is appended with the next version number. A replica asks for what
came after its cursor and the call returns as soon as there is something (or after a timeout
with nothing). A replica that is new or too far behind gets a snapshot of the whole window
instead; window writes are idempotent, so it applies the snapshot over what it holds and loses
nothing. One that followed an edge that restarted (another `epoch`) is asked to hand its window
to the new edge first (`orbitcast/delivery/rebuild.py`): the dead edge's last writes may have
reached it alone.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Batch:
    """One answer to a follower: apply `updates` in order, then hold `version` as the cursor."""

    epoch: str
    version: int
    updates: list[Any] = field(default_factory=list)
    snapshot: bool = False  # updates rebuild the whole window (apply over what you hold)
    health: dict[str, dict] = field(default_factory=dict)
    adopt: bool = False  # the edge started again: hand it your window first (rebuild.py), then follow anew


class UpdateLog:
    def __init__(self, snapshot: Callable[[], list[Any]], capacity: int = 4096) -> None:
        self.epoch = secrets.token_hex(8)  # a restarted edge is a new epoch
        self._snapshot = snapshot
        self._log: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self.version = 0
        self._changed = threading.Condition()

    def append(self, update: Any) -> int:
        with self._changed:
            self.version += 1
            self._log.append((self.version, update))
            self._changed.notify_all()
            return self.version

    def touch(self) -> None:
        """Wake followers without a window write (e.g. feed health changed)."""
        with self._changed:
            self._changed.notify_all()

    def since(self, epoch: str | None, cursor: int, timeout: float, health: Callable[[], dict[str, dict]]) -> Batch:
        """What came after `cursor`, waiting up to `timeout` seconds for something new."""
        with self._changed:
            if epoch is not None and epoch != self.epoch:
                return Batch(self.epoch, self.version, adopt=True, health=health())
            if epoch == self.epoch and cursor == self.version:
                self._changed.wait(timeout)
            version = self.version
            oldest = self._log[0][0] if self._log else version + 1
            if epoch is None or cursor > version or cursor + 1 < oldest:
                snapshot = True
            else:
                snapshot = False
                # From the newest back: a follower is a few writes behind, the log 4096 long
                # (every replica polls after every write).
                updates = []
                for v, u in reversed(self._log):
                    if v <= cursor:
                        break
                    updates.append(u)
                updates.reverse()
        if snapshot:
            # Built outside the log's lock from the window (which has its own): the version
            # read before it is a lower bound, and replaying later writes again is harmless.
            return Batch(self.epoch, version, self._snapshot(), True, health())
        return Batch(self.epoch, version, updates, False, health())
