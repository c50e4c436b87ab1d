"""How the edge's live window reaches every Delivery replica: a versioned log of window
writes that replicas follow with long polls.

Each write the edge accepts is appended with the next version number. A replica asks for what
came after its cursor and the call returns as soon as there is something (or after a timeout
with nothing). A replica that is new or too far behind gets a snapshot of the whole window
instead; window writes are idempotent, so it applies the snapshot over what it holds and loses
nothing. One that followed an edge that restarted (another `epoch`) is asked to hand its window
to the new edge first (`orbitcast/delivery/rebuild.py`): the dead edge's last writes may have
reached it alone.

A write is shown to viewers only once every replica holds it (`Batch.commit`). Each long poll
says how far its follower has received (its cursor); the commit is the lowest cursor of the
followers present, and a follower applies to its window only what is committed. So when the
edge dies, no replica has shown a write that another lacks: before, the dead edge's last write
could reach one replica and not the other, and a player whose reloads went to both saw a part
listed and then left out (found by tests/e2e/test_chaos_cluster.py). The price is one more long
poll round per write (a few ms). A follower that stops polling (a replica killed) is left out
of the commit after `absent_s`, so a dead replica holds the others back that long at most.
"""

from __future__ import annotations

import secrets
import threading
import time
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
    # Show writes up to this version only (every follower present holds them); None: show all
    # (a caller that does not take part in the commit, e.g. a test or a benchmark).
    commit: int | None = None


ABSENT_S = 0.25  # a follower that has not polled for this long no longer holds the commit back


@dataclass
class _Follower:
    cursor: int  # what it has received (it asked for what comes after)
    polling: int = 0  # its long polls waiting here now
    seen: float = 0.0  # when its last long poll ended (monotonic)


class UpdateLog:
    def __init__(self, snapshot: Callable[[], list[Any]], capacity: int = 4096, absent_s: float = ABSENT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.epoch = secrets.token_hex(8)  # a restarted edge is a new epoch
        self._snapshot = snapshot
        self._log: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self.version = 0
        self._changed = threading.Condition()
        self._followers: dict[str, _Follower] = {}
        self.absent_s = absent_s
        self.clock = clock
        self.left_out = 0  # followers left out of the commit for not polling (a replica gone, or stalled)

    def commit(self, me: _Follower | None = None) -> int:
        """The newest version every follower present has received (the log's lock held). For
        the answer to follower `me`, what it is being sent counts as received: it shows only
        what the answer brought it, and if the answer is lost nobody shows it."""
        now = self.clock()
        present = [self.version]
        for name, f in list(self._followers.items()):
            if f is me:
                continue
            if f.polling or now - f.seen < self.absent_s:
                present.append(f.cursor)
            else:
                del self._followers[name]
                self.left_out += 1
        return min(present)

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

    def since(self, epoch: str | None, cursor: int, timeout: float, health: Callable[[], dict[str, dict]],
              follower: str = "", committed: int | None = None) -> Batch:
        """What came after `cursor`, waiting up to `timeout` seconds for something new. A named
        `follower` takes part in the commit: `cursor` says what it has received, `committed`
        the commit it knows (it is woken when the commit passes it too)."""
        with self._changed:
            if epoch is not None and epoch != self.epoch:
                return Batch(self.epoch, self.version, adopt=True, health=health())
            me = None
            if follower and epoch == self.epoch and cursor <= self.version:
                me = self._followers.get(follower)
                if me is None:
                    me = self._followers[follower] = _Follower(cursor)
                me.cursor = max(me.cursor, cursor)
                me.polling += 1
                self._changed.notify_all()  # this cursor may move the commit the others wait for
            try:
                version, commit, updates = self._wait(epoch, cursor, timeout, me,
                                                      committed if me is not None else None)
            finally:
                if me is not None:
                    me.polling -= 1
                    me.seen = self.clock()
        if updates is None:
            # Built outside the log's lock from the window (which has its own): the version
            # read before it is a lower bound, and replaying later writes again is harmless.
            return Batch(self.epoch, version, self._snapshot(), True, health(), commit=commit)
        return Batch(self.epoch, version, updates, False, health(), commit=commit)

    def _wait(self, epoch: str | None, cursor: int, timeout: float, me: _Follower | None,
              committed: int | None) -> tuple[int, int | None, list[Any] | None]:
        """(version, commit, the writes after `cursor` or None for a snapshot); the lock held."""
        gated = committed is not None
        if epoch == self.epoch and cursor == self.version:
            deadline = self.clock() + timeout
            while cursor == self.version and not (gated and self.commit(me) > committed):
                left = deadline - self.clock()
                if left <= 0:
                    break
                # while a write waits for a follower, look again when one may count as absent
                waiting = gated and self.commit(me) < self.version
                self._changed.wait(min(left, self.absent_s / 2) if waiting else left)
        version = self.version
        commit = self.commit(me) if gated else None
        oldest = self._log[0][0] if self._log else version + 1
        if epoch is None or cursor > version or cursor + 1 < oldest:
            return version, commit, None
        # From the newest back: a follower is a few writes behind, the log 4096 long (every
        # replica polls after every write).
        updates = []
        for v, u in reversed(self._log):
            if v <= cursor:
                break
            updates.append(u)
        updates.reverse()
        return version, commit, updates
