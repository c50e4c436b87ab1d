"""Feed health as users see it in /api/feeds."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal

State = Literal["starting", "live", "failed", "ended", "stopped"]


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
