"""The delivery edge's state: the live window of every feed and the feeds' health.

Serve replicas read from it and cache what is immutable; it is threaded so that reads from
many replicas do not queue behind each other.
"""

from __future__ import annotations

import threading
import time

import ray

from orbitcast.delivery.playlists import RenditionInfo, iso_ms
from orbitcast.delivery.window import LiveWindow
from orbitcast.segment import Segment

NAME = "orbitcast-edge"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=32)
class Edge:
    def __init__(self, live_window: int, segment_duration: float, feeds: list[str]) -> None:
        self.window = LiveWindow(live_window, segment_duration)
        self.lock = threading.Lock()
        self.health: dict[str, dict] = {f: {"feed": f, "state": "starting"} for f in feeds}
        self.received = 0
        self.rejected = 0

    def set_init(self, feed: str, info: RenditionInfo, init: bytes) -> None:
        with self.lock:
            self.window.set_init(feed, info, init)

    def publish(self, segments: list[Segment]) -> int:
        added = 0
        for seg in segments:
            try:
                seg.verified()  # hand-off check: packager -> edge
            except ValueError:
                self.rejected += 1
                continue
            with self.lock:
                added += self.window.add(seg)
        self.received += len(segments)
        return added

    def set_health(self, feed: str, health: dict) -> None:
        self.health[feed] = health

    def master(self, feed: str) -> str | None:
        with self.lock:
            return self.window.master(feed)

    def media(self, feed: str, rendition: str) -> str | None:
        with self.lock:
            return self.window.media(feed, rendition)

    def init(self, feed: str, rendition: str) -> bytes | None:
        with self.lock:
            return self.window.init(feed, rendition)

    def segment(self, feed: str, rendition: str, seq: int) -> bytes | None:
        with self.lock:
            seg = self.window.segment(feed, rendition, seq)
        return seg.data if seg else None

    def known(self, feed: str) -> bool:
        return feed in self.health or feed in self.window.feeds()

    def feeds(self) -> list[dict]:
        now = time.time()
        out = []
        with self.lock:
            names = sorted(set(self.health) | set(self.window.feeds()))
            for name in names:
                newest = self.window.newest(name)
                entry = dict(self.health.get(name, {"feed": name, "state": "unknown"}))
                entry["renditions"] = [
                    {"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth, "codecs": r.codecs}
                    for r in self.window.renditions(name)
                ]
                if newest is not None:
                    end = newest.program_date_time.timestamp() + newest.duration
                    entry["last_segment"] = {
                        "seq": newest.seq,
                        "program_date_time": iso_ms(newest.program_date_time),
                        "duration": newest.duration,
                    }
                    # How far the newest published media lags the wall clock.
                    entry["latency"] = round(now - end, 3)
                else:
                    entry["last_segment"] = None
                    entry["latency"] = None
                out.append(entry)
        return out

    def stats(self) -> dict:
        return {"received": self.received, "rejected": self.rejected}
