"""Per-recipient in-order queues of accepted E2E messages.

A message leaves its queue only when its callback was answered 200 (`ack`), and the head
blocks everything behind it: delivery is in order per recipient and at least once.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

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
    attempts: int = 0


class RecipientQueue:
    def __init__(self, identity: str, max_length: int) -> None:
        self.identity = identity
        self.max_length = max_length
        self._items: deque[QueuedMessage] = deque()
        self._changed = threading.Condition()

    def put(self, message: QueuedMessage) -> None:
        with self._changed:
            if len(self._items) >= self.max_length:
                raise Unavailable("recipient queue full")
            self._items.append(message)
            self._changed.notify_all()

    def head(self, timeout: float | None = None) -> QueuedMessage | None:
        """The oldest undelivered message, waiting up to `timeout` for one."""
        with self._changed:
            if not self._items:
                self._changed.wait(timeout)
            return self._items[0] if self._items else None

    def peek(self, limit: int, timeout: float | None = None) -> list[QueuedMessage]:
        """Up to `limit` undelivered messages, oldest first, waiting up to `timeout` for one."""
        with self._changed:
            if not self._items:
                self._changed.wait(timeout)
            return [self._items[i] for i in range(min(limit, len(self._items)))]

    def ack(self, message_id: str) -> bool:
        """Remove the head if it is `message_id` (a late ack for another id is ignored)."""
        with self._changed:
            if self._items and self._items[0].message_id == message_id:
                self._items.popleft()
                self._changed.notify_all()
                return True
            return False

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def snapshot(self) -> list[QueuedMessage]:
        with self._changed:
            return list(self._items)

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)
