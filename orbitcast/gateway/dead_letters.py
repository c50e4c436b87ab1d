"""Where undeliverable messages go: a dead-letter record per recipient, never a silent drop.

A message is dead-lettered when its recipient refused it for good (a 4xx answer), refused it
`max_attempts` times, or it waited longer than `max_age_s`. A message the gateway could not
even queue (the recipient's queue full: 503 to the sender) is counted here the same way, as a
refusal. Per recipient: the counts, the last reason and when; the letters themselves (ids,
sender, reason, attempts, no box) are kept for the most recent `keep` only. `alarm` is up while
a dead letter or a refusal is less than `alarm_window_s` old.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    from_id: str
    to_id: str
    reason: str
    attempts: int
    age_s: float  # from acceptance to dead-lettering
    at: float  # wall clock, unix seconds


@dataclass
class _Recipient:
    dead_letters: int = 0
    refused_queue_full: int = 0
    last_reason: str | None = None
    last_at: float | None = None  # wall clock of the last dead letter or refusal
    letters: deque[DeadLetter] = field(default_factory=deque)


class DeadLetters:
    def __init__(self, keep: int = 100, alarm_window_s: float = 60.0) -> None:
        self.keep = keep
        self.alarm_window_s = alarm_window_s
        self._lock = threading.Lock()
        self._by_recipient: dict[str, _Recipient] = {}

    def add(self, letter: DeadLetter) -> bool:
        """Record `letter`; True when it raised the recipient's alarm (worth a log line)."""
        with self._lock:
            entry = self._by_recipient.setdefault(letter.to_id, _Recipient())
            raised = entry.last_at is None or letter.at - entry.last_at >= self.alarm_window_s
            entry.dead_letters += 1
            entry.last_reason, entry.last_at = letter.reason, letter.at
            entry.letters.append(letter)
            while len(entry.letters) > self.keep:
                entry.letters.popleft()
            return raised

    def refused(self, to_id: str, reason: str, at: float) -> bool:
        """A message for `to_id` that was never queued (its queue was full); True when this
        raised the recipient's alarm."""
        with self._lock:
            entry = self._by_recipient.setdefault(to_id, _Recipient())
            raised = entry.last_at is None or at - entry.last_at >= self.alarm_window_s
            entry.refused_queue_full += 1
            entry.last_reason, entry.last_at = reason, at
            return raised

    def letters(self, to_id: str) -> list[DeadLetter]:
        with self._lock:
            entry = self._by_recipient.get(to_id)
            return list(entry.letters) if entry else []

    def count(self, to_id: str | None = None) -> int:
        with self._lock:
            entries = self._by_recipient.values() if to_id is None else [self._by_recipient.get(to_id, _Recipient())]
            return sum(e.dead_letters for e in entries)

    def report(self, to_id: str, now: float, recent: int = 5) -> dict:
        """The recipient's part of the gateway's health: counts, last reason, alarm."""
        with self._lock:
            entry = self._by_recipient.get(to_id, _Recipient())
            return {
                "dead_letters": entry.dead_letters,
                "refused_queue_full": entry.refused_queue_full,
                "last_reason": entry.last_reason,
                "last_at": entry.last_at,
                "alarm": entry.last_at is not None and now - entry.last_at < self.alarm_window_s,
                "recent": [asdict(letter) for letter in list(entry.letters)[-recent:]],
            }
