"""The transcoder pool: members that each run the live transcoders of the feeds placed on them."""

from __future__ import annotations

import threading

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from orbitcast.config import OrbitcastConfig
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.media.units import FeedStreams, MediaUnit


@ray.remote(max_restarts=-1, max_concurrency=8)
class Transcoder:
    """One pool member. A restarted member comes back empty; feeds then open again."""

    def __init__(self, config: OrbitcastConfig, packager: "ray.actor.ActorHandle") -> None:
        self.config = config
        self.packager = packager
        self._feeds: dict[str, LiveTranscoder] = {}
        self._published_init: dict[str, dict[str, bytes]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def ping(self) -> int:
        return len(self._feeds)

    def push(self, feed: str, streams: FeedStreams, units: list[MediaUnit]) -> int | None:
        """Transcode a batch; returns the highest seq finished in every rung (see ReplayBuffer)."""
        with self._guard:
            lock = self._locks.setdefault(feed, threading.Lock())
        with lock:
            tr = self._feeds.get(feed)
            if tr is None:
                cfg = self.config
                tr = LiveTranscoder(feed, cfg.ladder, cfg.segment_duration, cfg.part_duration, streams)
                self._feeds[feed] = tr
            elif tr.streams.generation != streams.generation:
                tr.change_input(streams)
            segments = tr.push(units)
            self._publish_inits(feed, tr)
            if segments:
                ray.get(self.packager.package.remote(segments))
            return tr.published_through

    def _publish_inits(self, feed: str, tr: LiveTranscoder) -> None:
        known = self._published_init.setdefault(feed, {})
        for rendition, init in tr.init_segments.items():
            if known.get(rendition) != init:
                ray.get(self.packager.publish_init.remote(feed, rendition, init))
                known[rendition] = init


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class TranscoderPool:
    """Places feeds on members, least loaded first, and moves a feed off a member that died."""

    def __init__(self, config: OrbitcastConfig, packager: "ray.actor.ActorHandle") -> None:
        self.members = [
            Transcoder.options(num_cpus=config.transcoder_cpus).remote(config, packager)
            for _ in range(config.transcoders)
        ]
        self.placement: dict[str, int] = {}

    def assign(self, feed: str, avoid: int | None = None) -> tuple[int, "ray.actor.ActorHandle"]:
        loads = {i: 0 for i in range(len(self.members))}
        for f, i in self.placement.items():
            if f != feed:
                loads[i] += 1
        order = sorted(loads, key=lambda i: (i == avoid, loads[i], i))
        for i in order:
            try:
                ray.get(self.members[i].ping.remote(), timeout=10)
            except (RayActorError, GetTimeoutError):
                continue
            self.placement[feed] = i
            return i, self.members[i]
        raise RuntimeError("no transcoder pool member is alive")

    def placements(self) -> dict[str, int]:
        return dict(self.placement)

    def member(self, index: int) -> "ray.actor.ActorHandle":
        return self.members[index]
