"""Feed health as users see it in /api/feeds, and the backoff between retries."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Literal

State = Literal["starting", "live", "failed", "ended", "stopped"]


@dataclass
class Backoff:
    """Exponential backoff with jitter, reset by a success."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1
    attempt: int = 0

    def next_delay(self) -> float:
        # Stop growing once past the cap: factor**attempt overflows a float after ~1000 tries.
        base = min(self.maximum, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class FeedHealth:
    feed: str
    state: State = "starting"
    reason: str | None = None
    since: float = 0.0
    retries: int = 0
    retry_at: float | None = None
    media_time: float = 0.0  # newest media time read from the source
    timeline_start: float = 0.0  # media time at which this run of the feed began

    def to(self, state: State, reason: str | None = None, retry_at: float | None = None) -> None:
        if state != self.state or reason != self.reason:
            self.since = time.time()
        self.state, self.reason, self.retry_at = state, reason, retry_at
        if state == "failed":
            self.retries += 1

    def as_dict(self) -> dict:
        d = asdict(self)
        d["retry_in"] = round(max(0.0, self.retry_at - time.time()), 1) if self.retry_at else None
        del d["retry_at"]
        return d
