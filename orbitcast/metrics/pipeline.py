"""The metrics of the pipeline's actors: what the edge publishes to the replicas, and what each
feed's packager seals and certifies."""

from __future__ import annotations

from collections.abc import Mapping

from .store import MetricStore

SEAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Seconds from the end of the media to its arrival at the edge (what a viewer can at best see).
ARRIVAL_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_KIND = {"part": "part", "media": "segment", "init": "init"}


class EdgeMetrics:
    """Recorded by the edge under its lock, as each write enters the window."""

    def __init__(self) -> None:
        self.store = store = MetricStore()
        self.parts = store.counter("orbitcast_parts_published_total",
                                   "Parts the edge opened, verified and published to the replicas", ("feed", "rendition"))
        self.segments = store.counter("orbitcast_segments_published_total",
                                      "Whole segments the edge opened, verified and published", ("feed", "rendition"))
        self.bytes = store.counter("orbitcast_published_bytes_total",
                                   "Bytes of media published, by kind (part, segment, init)", ("feed", "rendition", "kind"))
        self.bitrate = store.gauge("orbitcast_rendition_bitrate_bps",
                                   "Bits per second of the newest whole segment (size x 8 / duration)", ("feed", "rendition"))
        self.arrival = store.histogram("orbitcast_edge_arrival_lag_seconds",
                                       "From the end of a part's or segment's media (its program date-time) to its "
                                       "arrival at the edge", ARRIVAL_BUCKETS, ("kind",))
        self.messages = store.counter("orbitcast_edge_messages_total",
                                      "Gateway callbacks the edge's receiver handled, by result (accepted or why refused)",
                                      ("result",))

    def published(self, kind: str, feed: str, rendition: str, size: int, duration: float) -> None:
        name = _KIND.get(kind, kind)
        self.bytes.inc(feed, rendition, name, by=size)
        if name == "part":
            self.parts.inc(feed, rendition)
        elif name == "segment":
            self.segments.inc(feed, rendition)
            if duration > 0:
                self.bitrate.set(size * 8 / duration, feed, rendition)

    def arrived(self, kind: str, lag_s: float) -> None:
        self.arrival.observe(lag_s, _KIND.get(kind, kind))

    def receiver(self, counters: Mapping[str, int]) -> None:
        for result, count in list(counters.items()):
            self.messages.set_total(count, str(result))


class PackagerMetrics:
    def __init__(self, feed: str) -> None:
        self.feed = feed
        self.store = store = MetricStore()
        self.seal = store.histogram("orbitcast_seal_seconds",
                                    "Sealing one part, segment or init: encrypt, upload the blob, send the messages",
                                    SEAL_BUCKETS, ("feed", "kind"))
        self.messages = store.counter("orbitcast_packager_messages_total",
                                      "File messages the packager handed to the gateway, by result (sent, refused)",
                                      ("feed", "result"))
        self.leaves = store.gauge("orbitcast_ledger_leaves",
                                  "Leaves in the feed's certification ledger (segments certified)", ("feed",))

    def sealed(self, kind: str, seconds: float) -> None:
        self.seal.observe(seconds, self.feed, _KIND.get(kind, kind))

    def counted(self, counters: Mapping[str, int]) -> None:
        self.messages.set_total(counters.get("sent", 0), self.feed, "sent")
        self.messages.set_total(counters.get("refused", 0), self.feed, "refused")

    def certified(self, leaf_indices: list[int | None]) -> None:
        """The ledger's answer to an append: a leaf's index + 1 is the log's size then."""
        known = [i for i in leaf_indices if i is not None]
        if known:
            self.leaves.set(max(known) + 1, self.feed)
