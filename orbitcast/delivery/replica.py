"""A Delivery replica's own copy of the live window, and the waits of the requests it holds.

The replica follows the edge (`orbitcast.delivery.updates`) and applies each batch to its
`LiveWindow`; every request is then answered from this process's memory. A blocking playlist
reload or a request for the preload-hinted part waits on an asyncio event of its rendition,
set by the batch that brings the next part: no thread per held request, nothing polls, and a
thousand held requests cost a thousand small coroutines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .blocking import Readiness
from .policy import PlaylistPolicy
from .status import feeds_status
from .updates import Batch
from .window import InitUpdate, LiveWindow, PartUpdate, SegmentUpdate, Update

Key = tuple[str, str]  # (feed, rendition)


def _key_of(update: Update) -> Key | None:
    if isinstance(update, PartUpdate):
        return update.part.feed, update.part.rendition
    if isinstance(update, SegmentUpdate):
        return update.segment.feed, update.segment.rendition
    if isinstance(update, InitUpdate):
        return update.feed, update.info.name
    return None


class ReplicaState:
    def __init__(self, policy: PlaylistPolicy) -> None:
        self.policy = policy
        self.window = LiveWindow(policy)
        self.health: dict[str, dict] = {}
        self.epoch: str | None = None
        self.cursor = 0
        self.batches = 0
        # wall clock when a rendition last changed here: a held answer says when what it waited
        # for arrived, so a benchmark can time arrival -> answer from outside
        self.arrived: dict[Key, float] = {}
        self._events: dict[Key, asyncio.Event] = {}

    # -- following the edge ----------------------------------------------------------------
    def apply(self, batch: Batch) -> int:
        """Apply one batch from the edge; wakes what waits on the renditions it changed."""
        now = time.time()
        changed: set[Key] = set()
        for update in batch.updates:
            if self.window.apply(update):
                key = _key_of(update)
                if key is not None:
                    changed.add(key)
        self.epoch, self.cursor = batch.epoch, batch.version
        self.health = batch.health
        self.batches += 1
        for key in changed:
            self.arrived[key] = now
            event = self._events.pop(key, None)
            if event is not None:
                event.set()
        return len(changed)

    # -- holding requests ------------------------------------------------------------------
    async def wait_until(self, feed: str, rendition: str, check: Callable[[], Readiness], timeout: float) -> Readiness:
        """`check()` until it is not WAIT, re-asked after every change of this rendition; WAIT
        when `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (feed, rendition)
        while True:
            state = check()
            remaining = deadline - loop.time()
            if state is not Readiness.WAIT or remaining <= 0:
                return state
            event = self._events.get(key)
            if event is None:
                event = self._events[key] = asyncio.Event()
            try:
                async with asyncio.timeout(remaining):  # no extra task per held request
                    await event.wait()
            except TimeoutError:
                pass

    def feeds(self) -> list[dict]:
        return feeds_status(self.window, self.health)
