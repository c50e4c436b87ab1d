"""A Delivery replica's own copy of the live window, and the waits of the requests it holds.

The replica follows the edge (`orbitcast.delivery.updates`) and applies each batch to its
`LiveWindow`; every request is then answered from this process's memory. A blocking playlist
reload or a request for the preload-hinted part waits on an asyncio event of its rendition,
set by the batch that brings the next part: no thread per held request, nothing polls, and a
thousand held requests cost a thousand small coroutines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable

from .blocking import Readiness
from .policy import PlaylistPolicy
from .status import feeds_status
from .updates import Batch
from .window import InitUpdate, LiveWindow, PartUpdate, SegmentUpdate, Update

Key = tuple[str, str]  # (feed, rendition)

log = logging.getLogger(__name__)


class Early:
    """A held request that can be answered from `apply` itself, the moment it is ready: the
    answers a part releases are written one after the other before any of the held requests'
    tasks has run again (each would otherwise be resumed, re-check and answer in turn)."""

    __slots__ = ("check", "answer", "done")

    def __init__(self, check: Callable[[], Readiness], answer: Callable[[], bool]) -> None:
        self.check = check
        self.answer = answer  # writes the whole answer; False when it cannot (the task answers)
        self.done = False


def _key_of(update: Update) -> Key | None:
    if isinstance(update, PartUpdate):
        return update.part.feed, update.part.rendition
    if isinstance(update, SegmentUpdate):
        return update.segment.feed, update.segment.rendition
    if isinstance(update, InitUpdate):
        return update.feed, update.info.name
    # a TagUpdate (analysis) changes playlist text, not what a held request waits for
    return None


class ReplicaState:
    def __init__(self, policy: PlaylistPolicy) -> None:
        self.policy = policy
        self.window = LiveWindow(policy)
        self.health: dict[str, dict] = {}
        self.epoch: str | None = None
        self.cursor = 0  # the newest write received from the edge
        self.committed = 0  # the newest write every replica holds: shown up to here
        self.pending: deque[tuple[int, Update]] = deque()  # received, not yet committed
        self.batches = 0
        # wall clock when a rendition last changed here: a held answer says when what it waited
        # for arrived, so a benchmark can time arrival -> answer from outside
        self.arrived: dict[Key, float] = {}
        self._events: dict[Key, asyncio.Event] = {}
        self._early: dict[Key, dict[Early, None]] = {}  # held requests in arrival order
        # seconds from "the transcoder cut the part" to "this replica lists it"
        self.part_hops: deque[float] = deque(maxlen=4096)
        self.on_part_hop: Callable[[float], None] | None = None  # the replica's metrics (http_metrics.py)
        self.written_whole = 0  # held answers written in one piece (whole_answer.py)
        self.held = 0  # requests waiting right now
        self.held_by_feed: Counter[str] = Counter()  # the same, by feed (an LL-HLS viewer holds about one)

    # -- following the edge ----------------------------------------------------------------
    def apply(self, batch: Batch) -> int:
        """Apply one batch from the edge; wakes what waits on the renditions it changed."""
        if batch.adopt:
            return 0  # the edge restarted: this window goes to it first (hand_over)
        now = time.time()
        changed: set[Key] = set()
        if batch.snapshot:
            # A replica that joins (or fell far behind) shows the edge's window as it is.
            self.pending.clear()
            shown: list[Update] = list(batch.updates)
        else:
            first = batch.version - len(batch.updates) + 1
            self.pending.extend(zip(range(first, batch.version + 1), batch.updates))
            shown = []
        if batch.commit is None:
            self.committed = batch.version
        elif batch.snapshot:
            self.committed = batch.commit
        else:  # a commit can fall back while a new replica catches up: what was shown stays
            self.committed = max(self.committed, batch.commit)
        while self.pending and self.pending[0][0] <= self.committed:
            shown.append(self.pending.popleft()[1])
        for update in shown:
            if self.window.apply(update):
                key = _key_of(update)
                if key is not None:
                    changed.add(key)
                if isinstance(update, PartUpdate) and update.part.made_at and not batch.snapshot:
                    self.part_hops.append(now - update.part.made_at)
                    if self.on_part_hop is not None:
                        self.on_part_hop(now - update.part.made_at)
        self.epoch, self.cursor = batch.epoch, batch.version
        self.health = batch.health
        self.batches += 1
        for key in changed:
            self.arrived[key] = now  # before any answer: held answers say when this came
        for key in changed:
            self._answer_early(key)
            event = self._events.pop(key, None)
            if event is not None:
                event.set()
        return len(changed)

    def hand_over(self) -> list:
        """This window for an edge that started again (orbitcast/delivery/rebuild.py); the
        next batch is then the rebuilt window, applied over this one."""
        self.epoch, self.cursor, self.committed = None, 0, 0
        held = [u for _, u in self.pending]  # received from the dead edge, not yet shown
        self.pending.clear()
        return self.window.snapshot() + held

    def _answer_early(self, key: Key) -> None:
        for early in list(self._early.get(key, ())):
            if early.done:
                continue
            try:
                if early.check() is Readiness.READY:
                    early.done = early.answer()
            except Exception:  # noqa: BLE001 - one request's failure is its own: its task answers it
                log.exception("answering a held request early failed")

    # -- holding requests ------------------------------------------------------------------
    async def wait_until(self, feed: str, rendition: str, check: Callable[[], Readiness], timeout: float,
                         answer: Callable[[], bool] | None = None) -> Readiness:
        """`check()` until it is not WAIT, re-asked after every change of this rendition; WAIT
        when `timeout` seconds pass first. With `answer`, the change that makes the request
        ready calls it at once (`Early`): READY is then returned with the answer already out."""
        early = Early(check, answer) if answer is not None else None
        if early is not None:
            self._early.setdefault((feed, rendition), {})[early] = None
            try:
                return await self._wait(feed, rendition, check, timeout, early)
            finally:
                waiting = self._early.get((feed, rendition))
                if waiting is not None:
                    waiting.pop(early, None)
                    if not waiting:
                        del self._early[(feed, rendition)]
        return await self._wait(feed, rendition, check, timeout, None)

    async def _wait(self, feed: str, rendition: str, check: Callable[[], Readiness], timeout: float,
                    early: Early | None) -> Readiness:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (feed, rendition)
        while True:
            if early is not None and early.done:
                return Readiness.READY
            state = check()
            remaining = deadline - loop.time()
            if state is not Readiness.WAIT or remaining <= 0:
                return state
            event = self._events.get(key)
            if event is None:
                event = self._events[key] = asyncio.Event()
            self.held += 1
            self.held_by_feed[feed] += 1
            try:
                async with asyncio.timeout(remaining):  # no extra task per held request
                    await event.wait()
            except TimeoutError:
                pass
            finally:
                self.held -= 1
                self.held_by_feed[feed] -= 1

    def feeds(self) -> list[dict]:
        return feeds_status(self.window, self.health)

    def stats(self) -> dict:
        """This replica: how far it follows the edge, what it holds, and the part hop."""
        hops = sorted(self.part_hops)
        out: dict = {"pid": os.getpid(), "epoch": self.epoch, "cursor": self.cursor, "committed": self.committed,
                     "pending": len(self.pending), "batches": self.batches,
                     "held": self.held, "held_written_whole": self.written_whole, "parts_timed": len(hops)}
        if hops:
            out["part_hop_ms"] = {
                "p50": round(statistics.median(hops) * 1000, 2),
                "p95": round(hops[int(0.95 * (len(hops) - 1))] * 1000, 2),
                "p99": round(hops[int(0.99 * (len(hops) - 1))] * 1000, 2),
                "max": round(hops[-1] * 1000, 2),
            }
        return out
