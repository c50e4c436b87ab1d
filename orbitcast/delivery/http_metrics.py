"""What a Delivery replica measures of its viewers: requests by route kind and status, how long
each took (held ones included), the part hop, and CMCD: viewers by session id and their
buffer levels.

Recorded after the answer has gone out (`LiveHTTP` calls `answered` once the body is sent), so
a viewer never waits on it; on the replica's event loop, so without locks.
"""

from __future__ import annotations

import time

from ..metrics.store import MetricStore
from . import cmcd
from .names import INIT_NAME

KINDS = ("playlist", "part", "segment", "init", "other")
# Seconds. Held requests (blocking reloads, preload hints) wait up to three target durations.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds from "the transcoder cut the part" to "this replica lists it".
HOP_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
# Seconds of media buffered ahead of the playhead (CMCD bl).
BUFFER_BUCKETS = (0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0, 30.0, 60.0)
VIEWER_WINDOW_S = 30.0


def route_kind(path: str) -> str:
    """playlist, part, segment, init or other, from a /live/ path's last name."""
    if not path.startswith("/live/"):
        return "other"
    name = path[path.rfind("/") + 1:]
    if name.endswith(".m3u8"):
        return "playlist"
    if name == INIT_NAME:
        return "init"
    if name.endswith(".m4s"):
        return "part" if name.count(".") == 2 else "segment"
    return "other"


def _viewer_answer(status: int) -> bool:
    # A request the replica took up for a feed it serves: answered, or held until the hold
    # ended (503). 4xx are refusals and unknown names, whose feed label could be anything.
    return status < 400 or status == 503


class ReplicaMetrics:
    def __init__(self, store: MetricStore | None = None) -> None:
        self.store = store = store or MetricStore()
        self.requests = store.counter("orbitcast_http_requests_total",
                                      "HTTP requests a Delivery replica answered, by route kind and status",
                                      ("kind", "status"))
        self.duration = store.histogram("orbitcast_http_request_duration_seconds",
                                        "From request to answer sent, by route kind (held requests include the hold)",
                                        LATENCY_BUCKETS, ("kind",))
        self.held = store.gauge("orbitcast_http_held_requests",
                                "Blocking playlist reloads and preload-hinted parts held right now")
        self.part_hop = store.histogram("orbitcast_part_listed_latency_seconds",
                                        "From the part's cut in the transcoder to its listing in a replica",
                                        HOP_BUCKETS)
        self.viewers = store.sessions("orbitcast_viewers",
                                      f"Viewers: CMCD session ids seen in the last {VIEWER_WINDOW_S:g} s, by feed",
                                      ("feed",), VIEWER_WINDOW_S)
        self.buffer = store.histogram("orbitcast_viewer_buffer_seconds",
                                      "Viewers' buffer length (CMCD bl) on the requests that carry it",
                                      BUFFER_BUCKETS)
        self.starved = store.counter("orbitcast_viewer_buffer_starvations_total",
                                     "Requests whose CMCD says the buffer ran dry since the last one (bs)",
                                     ("feed",))
        self.cmcd_requests = store.counter("orbitcast_cmcd_requests_total",
                                           "Requests that carried CMCD, by where (header, query, both)", ("via",))
        self.cmcd_invalid = store.counter("orbitcast_cmcd_invalid_total",
                                          "CMCD payloads or keys ignored as malformed")
        self.untracked = store.gauge("orbitcast_viewers_untracked",
                                     "CMCD session ids not tracked: the replica's table was full")

    def answered(self, path: str, status: int, seconds: float, headers, query: bytes) -> None:
        kind = route_kind(path)
        self.requests.inc(kind, str(status))
        self.duration.observe(seconds, kind)
        if kind == "other":
            return
        reading = cmcd.read(headers, query)
        if reading is None:
            return
        self.cmcd_requests.inc(reading.via)
        if reading.invalid:
            self.cmcd_invalid.inc(by=reading.invalid)
        sid = reading.sid
        if sid is None or not _viewer_answer(status):
            return
        feed = path.split("/", 3)[2]
        self.viewers.seen(sid, time.time(), feed)
        buffer_s = reading.buffer_s
        if buffer_s is not None:
            self.buffer.observe(buffer_s)
        if reading.values.get("bs") is True:
            self.starved.inc(feed)

    def other(self, status: int, seconds: float) -> None:
        """A request the page app answered (/api, /time, /metrics, the page)."""
        self.requests.inc("other", str(status))
        self.duration.observe(seconds, "other")

    def snapshot(self, held: int, now: float) -> dict:
        self.held.set(held)
        self.untracked.set(self.viewers.overflow)
        return self.store.snapshot(now)
