"""Per-recipient queues of accepted E2E messages, with no head-of-line blocking.

New messages are taken oldest first. A message whose callback failed waits out its own
backoff in a retry heap while the ones behind it go on, so one message the recipient keeps
refusing (one feed's blob it cannot fetch) never holds back the others. Once due again, a
retry goes before newer messages. A message leaves its queue when its callback was answered
200 (`done`), or as a dead letter (`remove`, `expire`): never silently.

The gateway cannot order by feed (the box is end-to-end encrypted; Threema's API carries no
feed), so delivery is in order per recipient while every callback succeeds, and a retried
message arrives after newer ones. Threema's receivers must take messages in any order; the
edge's window and `orbitcast receive` do.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from .errors import Unavailable


@dataclass
class QueuedMessage:
    message_id: str  # 16 hex
    from_id: str
    to_id: str
    date: int  # unix seconds when the gateway accepted it
    nonce_hex: str
    box_hex: str
    nickname: str | None = None
    no_delivery_receipts: bool = False
    attempts: int = 0  # exchanges that carried it, whatever came of them
    refusals: int = 0  # answers other than 200 (what the retry budget counts)
    last_failure: str | None = None  # e.g. "http_500", "ConnectionError"
    queued_at: float = field(default=0.0, compare=False)  # the queue's clock, set by `put`
    next_at: float = field(default=0.0, compare=False)  # not tried again before this
    order: int = field(default=0, compare=False)  # arrival rank in its queue


class RecipientQueue:
    """One recipient's undelivered messages: new (FIFO), in flight (taken by the worker), and
    waiting to be retried (a heap on when they are due). `max_length` bounds all three."""

    def __init__(self, identity: str, max_length: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.identity = identity
        self.max_length = max_length
        self._clock = clock
        self._new: deque[QueuedMessage] = deque()
        self._retry: list[tuple[float, int, QueuedMessage]] = []
        self._in_flight: dict[str, QueuedMessage] = {}
        self._all: dict[str, QueuedMessage] = {}
        self._arrivals = itertools.count()
        self._woken = 0  # bumped by `wake`: a waiting `take` returns at once
        self._changed = threading.Condition()

    def put(self, message: QueuedMessage, age: float = 0.0) -> None:
        """Queue `message`; 503 (`Unavailable`) when the recipient already has `max_length`.
        `age`: how long ago it was accepted (one restored from the journal)."""
        with self._changed:
            if len(self._all) >= self.max_length:
                raise Unavailable("recipient queue full")
            message.queued_at = self._clock() - age
            message.order = next(self._arrivals)
            self._new.append(message)
            self._all[message.message_id] = message
            self._changed.notify_all()

    def take(self, limit: int, timeout: float | None = None) -> list[QueuedMessage]:
        """Up to `limit` messages to try now, marked in flight: due retries first (they are
        older), then new ones oldest first. Waits up to `timeout` for one to be due."""
        with self._changed:
            deadline = None if timeout is None else self._clock() + timeout
            woken = self._woken
            while True:
                now = self._clock()
                out: list[QueuedMessage] = []
                while self._retry and self._retry[0][0] <= now and len(out) < limit:
                    out.append(heapq.heappop(self._retry)[2])
                while self._new and len(out) < limit:
                    out.append(self._new.popleft())
                if out:
                    for message in out:
                        self._in_flight[message.message_id] = message
                    return out
                wait = None if deadline is None else deadline - now
                if self._retry:
                    due = self._retry[0][0] - now
                    wait = due if wait is None else min(wait, due)
                if (wait is not None and wait <= 0) or self._woken != woken:
                    return []
                self._changed.wait(wait)

    def done(self, message: QueuedMessage) -> bool:
        """Delivered: `message` leaves the queue (False when it had already left)."""
        return self._forget(message.message_id) is not None

    def retry(self, message: QueuedMessage, delay: float) -> None:
        """`message` failed: tried again `delay` seconds from now, while others go on."""
        with self._changed:
            if self._in_flight.pop(message.message_id, None) is None:
                return  # acknowledged meanwhile (pull mode) or already removed
            message.next_at = self._clock() + delay
            heapq.heappush(self._retry, (message.next_at, message.order, message))
            self._changed.notify_all()

    def release(self, messages: list[QueuedMessage]) -> None:
        """Taken but not settled (not tried, or the recipient gave no answer): back at the
        front, in their order."""
        with self._changed:
            for message in reversed(messages):
                if self._in_flight.pop(message.message_id, None) is not None:
                    self._new.appendleft(message)
            self._changed.notify_all()

    def remove(self, message: QueuedMessage) -> bool:
        """Out of the queue for good (a dead letter); False when it had already left."""
        return self._forget(message.message_id) is not None

    def expire(self, max_age: float) -> list[QueuedMessage]:
        """Remove and return the messages not in flight that were queued over `max_age` ago."""
        with self._changed:
            cutoff = self._clock() - max_age
            old: list[QueuedMessage] = []
            while self._new and self._new[0].queued_at <= cutoff:
                old.append(self._new.popleft())
            if any(m.queued_at <= cutoff for _, _, m in self._retry):
                old += [m for _, _, m in self._retry if m.queued_at <= cutoff]
                self._retry = [e for e in self._retry if e[2].queued_at > cutoff]
                heapq.heapify(self._retry)
            for message in old:
                del self._all[message.message_id]
            if old:
                self._changed.notify_all()
            return old

    def ack(self, message_id: str) -> QueuedMessage | None:
        """Pull mode: the recipient took `message_id` itself; the message, or None if unknown."""
        return self._forget(message_id)

    def _forget(self, message_id: str) -> QueuedMessage | None:
        with self._changed:
            message = self._all.pop(message_id, None)
            if message is None:
                return None
            if self._in_flight.pop(message_id, None) is None:
                try:
                    self._new.remove(message)
                except ValueError:
                    self._retry = [e for e in self._retry if e[2] is not message]
                    heapq.heapify(self._retry)
            self._changed.notify_all()
            return message

    def wake(self) -> None:
        """Have a waiting `take` return now (its worker is stopping)."""
        with self._changed:
            self._woken += 1
            self._changed.notify_all()

    def snapshot(self) -> list[QueuedMessage]:
        """Every undelivered message, in the order they were queued."""
        with self._changed:
            return sorted(self._all.values(), key=lambda m: m.order)

    def older_than(self, age: float) -> list[QueuedMessage]:
        """The undelivered messages queued at least `age` seconds ago, in their order."""
        with self._changed:
            cutoff = self._clock() - age
            return sorted((m for m in self._all.values() if m.queued_at <= cutoff), key=lambda m: m.order)

    def reclaim(self) -> None:
        """A new worker starts: what an old one had in flight is to be tried again."""
        with self._changed:  # an RLock: release takes it again
            self.release(sorted(self._in_flight.values(), key=lambda m: m.order))

    def depth(self) -> dict[str, float]:
        """How many are queued, how many of those wait for a retry, and the oldest's age (s)."""
        with self._changed:
            oldest = min((m.queued_at for m in self._all.values()), default=None)
            return {"queued": len(self._all), "retrying": len(self._retry),
                    "oldest_s": 0.0 if oldest is None else round(self._clock() - oldest, 3)}

    def __len__(self) -> int:
        with self._changed:
            return len(self._all)
