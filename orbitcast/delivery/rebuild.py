"""An edge that Ray started again rebuilds its live window from its peers, the Delivery replicas,
before it takes new media.

Why: the dead edge's last writes may have reached some replicas and not others (a long poll in
flight when it died). A new edge that took new parts at once would close those seqs without the
writes it never saw; the replicas that had them would list a part the others never hold, and a
player whose part request reaches another replica than its playlist request gets a 404 for a
part it was told exists (found by tests/e2e/test_chaos_cluster.py). So:

- a replica that follows an older epoch is asked to hand its window over (`Batch.adopt`); the
  edge applies it (`adopt`): what its window takes goes to its log like any write, so every
  other replica gets it too. Each replica's window is its own prefix of the dead edge's log, so
  the union is the longest one, in order;
- with the window comes the replica's copy of the feeds' health (`adopt_health`): a new edge
  knows a feed only as "starting" until the feed's actor reports again (once a second), and
  /api/feeds and /metrics would say so of a feed that never stopped;
- meanwhile the edge holds the gateway's callbacks (`Rebuild.wait`): until every replica that
  asked has handed its window over, `quiet_s` after the start at least (the replicas' long
  polls are retried on the new edge as soon as it is up), and `max_s` at most (a replica that
  does not come must not stop the stream). A standby edge that takes over knows the replicas
  already (`expected`: those whose long polls it held while it stood by): once they have all
  handed their windows over, the rebuild is over without the quiet wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from .updates import UpdateLog
from .window import LiveWindow, Update

QUIET_S = 0.25  # the replicas' retried long polls all arrive within this of the restart
MAX_S = 1.5  # callbacks are held at most this long: a bound on what the rebuild adds to a restart


class Rebuild:
    def __init__(self, needed: bool, clock: Callable[[], float] = time.monotonic,
                 quiet_s: float = QUIET_S, max_s: float = MAX_S, expected: Iterable[str] = ()) -> None:
        self.clock = clock
        self.expected = frozenset(expected)
        self.started = clock()
        self.quiet_s, self.max_s = quiet_s, max_s
        self.asked: set[str] = set()
        self.adopted: set[str] = set()
        self.held = 0  # callback calls that waited for the rebuild
        self.waited_s = 0.0  # how long the rebuild held them, once it was over
        self._done = not needed
        self._changed = threading.Condition()

    @property
    def done(self) -> bool:
        with self._changed:
            return self._check()

    def asked_by(self, follower: str) -> None:
        """A follower of the dead edge asked for updates: it is told to hand its window over."""
        with self._changed:
            if not self._done:
                self.asked.add(follower)

    def adopted_from(self, follower: str) -> None:
        with self._changed:
            self.adopted.add(follower)
            self._check()
            self._changed.notify_all()

    def wait(self) -> None:
        """Returns when the rebuild is over (at once when none was needed)."""
        with self._changed:
            if self._check():
                return
            self.held += 1
            while not self._check():
                self._changed.wait(max(0.01, min(self.quiet_s, self.started + self.max_s - self.clock())))

    def _check(self) -> bool:
        if not self._done:
            elapsed = self.clock() - self.started
            handed = bool(self.asked) and self.asked <= self.adopted
            known = bool(self.expected) and self.expected <= self.adopted and handed
            if elapsed >= self.max_s or (handed and elapsed >= self.quiet_s) or known:
                self._done = True
                self.waited_s = elapsed
                self._changed.notify_all()
        return self._done

    def stats(self) -> dict:
        with self._changed:
            return {"done": self._check(), "asked": len(self.asked), "adopted": len(self.adopted),
                    "held": self.held, "waited_s": round(self.waited_s, 3)}


def adopt(window: LiveWindow, log: UpdateLog, updates: Iterable[Update]) -> int:
    """A replica's window (its `LiveWindow.snapshot()`) applied to the edge's: every write the
    edge's window takes goes to its log, for the other replicas. The number taken."""
    taken = 0
    for update in updates:
        if window.apply(update):
            log.append(update)
            taken += 1
    return taken


def adopt_health(health: dict[str, dict], reported: set[str], handed: Mapping[str, dict]) -> bool:
    """A replica's copy of the feeds' health taken into the edge's `health`, for the feeds it
    knows (the configured ones) whose actors have not reported to this edge yet (`reported`):
    a report made since the restart is newer than any copy. True when anything changed."""
    changed = False
    for feed, copy in handed.items():
        if feed in health and feed not in reported and isinstance(copy, dict) and copy != health[feed]:
            health[feed] = dict(copy)
            changed = True
    return changed
