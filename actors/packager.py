"""The packager: checks each segment's digest, stores it, catalogs it and publishes it."""

from __future__ import annotations

import ray

from orbitcast.catalog import Catalog
from orbitcast.config import OrbitcastConfig
from orbitcast.delivery.playlists import RenditionInfo
from orbitcast.segment import Segment
from orbitcast.store import Store


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Packager:
    def __init__(self, config: OrbitcastConfig, edge: "ray.actor.ActorHandle") -> None:
        self.store = Store(config.store)
        self.catalog = Catalog(self.store, flush_every=len(config.ladder.rungs) * 5)
        self.edge = edge
        self.published = 0

    def publish_init(self, feed: str, info: RenditionInfo, init: bytes) -> None:
        self.store.put((feed, info.name, "init.mp4"), init)
        ray.get(self.edge.set_init.remote(feed, info, init))

    def package(self, segments: list[Segment]) -> int:
        for seg in segments:
            seg.verified()  # hand-off check: transcoder -> packager
            self.store.put((seg.feed, seg.rendition, f"{seg.seq}.m4s"), seg.data)
            self.catalog.add(seg)
        ray.get(self.edge.publish.remote(segments))
        self.published += len(segments)
        return len(segments)

    def flush(self) -> None:
        self.catalog.flush()

    def catalog_rows(self) -> list[dict]:
        self.catalog.flush()
        return self.catalog.read().to_pylist()
