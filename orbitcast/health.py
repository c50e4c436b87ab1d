"""Feed health as users see it in /api/feeds."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal

# "reconnecting": a network input ended cleanly (a publisher disconnected, a relay restarted);
# for a live relay that is not the end of the feed, so it is opened again.
# "waiting": a listening input (SRT listener, RTMP publish) that no sender has reached yet.
State = Literal["starting", "live", "waiting", "reconnecting", "failed", "ended", "stopped"]


@dataclass
class FeedHealth:
    feed: str
    state: State = "starting"
    reason: str | None = None
    since: float = 0.0
    retries: int = 0
    reconnects: int = 0  # times a network input ended and was opened again
    retry_at: float | None = None
    media_time: float = 0.0  # newest media time read from the source
    timeline_start: float = 0.0  # media time at which this run of the feed began
    slate: bool = False  # the "signal lost" slate is going out in place of the lost input
    slate_since: float | None = None  # unix time the slate began

    def to(self, state: State, reason: str | None = None, retry_at: float | None = None) -> None:
        if state != self.state or reason != self.reason:
            self.since = time.time()
        if state == "failed":
            self.retries += 1
        elif state == "reconnecting" and self.state != "reconnecting":
            self.reconnects += 1
        self.state, self.reason, self.retry_at = state, reason, retry_at

    def as_dict(self) -> dict:
        d = asdict(self)
        d["retry_in"] = round(max(0.0, self.retry_at - time.time()), 1) if self.retry_at else None
        del d["retry_at"]
        return d
