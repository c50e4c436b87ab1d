"""What `/api/feeds` says of each feed, from a live window and the feeds' health reports."""

from __future__ import annotations

import time

from .playlists import iso_ms
from .window import LiveWindow


def feeds_status(window: LiveWindow, health: dict[str, dict]) -> list[dict]:
    """/api/feeds: each feed's health, renditions, newest segment and how far it lags."""
    now = time.time()
    out = []
    for name in sorted(set(health) | set(window.feeds())):
        entry = dict(health.get(name, {"feed": name, "state": "unknown"}))
        entry["renditions"] = [
            {"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth, "codecs": r.codecs}
            for r in window.renditions(name)
        ]
        newest = window.newest(name)
        if newest is not None:
            end = newest.program_date_time.timestamp() + newest.duration
            entry["last_segment"] = {"seq": newest.seq, "program_date_time": iso_ms(newest.program_date_time),
                                     "duration": newest.duration}
            # How far the newest published media lags the wall clock.
            entry["latency"] = round(now - end, 3)
        else:
            entry["last_segment"] = None
            entry["latency"] = None
        out.append(entry)
    return out
