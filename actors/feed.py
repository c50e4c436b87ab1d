"""FeedActor: one per feed. Runs the source loop in a thread and hands batches to the feed's
transcoder on a pool member, moving to another member if that one dies."""

from __future__ import annotations

import threading
import time
from collections import deque

import ray
from ray.exceptions import RayActorError, RayTaskError

from orbitcast.config import FeedConfig
from orbitcast.media.feed_runner import FeedRunner, SinkError, batch_seconds_for
from orbitcast.media.replay import ReplayBuffer
from orbitcast.media.units import FeedStreams, MediaUnit

from .clock_authority import NAME as CLOCK_NAME
from .stamping_clock import StampingClock

HEALTH_EVERY = 1.0
# Batches handed to the transcoder before the feed waits for the oldest: the next batch is read
# and carried while the one before is encoded (one at a time, the feed's thread sat idle for a
# quarter of the time, and a demo beside a browser on two cores fell behind the wall clock).
IN_FLIGHT = 2


@ray.remote(num_cpus=0, max_restarts=-1)
class FeedActor:
    def __init__(
        self,
        feed: FeedConfig,
        pool: "ray.actor.ActorHandle",
        clock: "ray.actor.ActorHandle",
        edge: "ray.actor.ActorHandle",
        segment_duration: float = 2.0,
        part_duration: float = 0.5,
    ) -> None:
        self.feed = feed
        self.pool = pool
        self.edge = edge
        self.clock = clock
        # Capture times (hence every segment's program date-time) come from a clock kept in
        # step with the authority; start() syncs before the source can read it.
        self.stamp = StampingClock(clock, f"feed:{feed.name}", authority_name=CLOCK_NAME,
                                   skew_offset_s=feed.clock_skew_offset_s,
                                   skew_drift_ppm=feed.clock_skew_drift_ppm).start()
        self.member: tuple[int, ray.actor.ActorHandle] | None = None
        self._batch = 0
        self._in_flight: deque[tuple[ray.ObjectRef, bool]] = deque()  # (push, of the slate), oldest first
        self.replay = ReplayBuffer(segment_duration)
        self.runner = FeedRunner(feed, self._sink, clock=self.stamp.now, batch_seconds=batch_seconds_for(part_duration))
        threading.Thread(target=self.runner.run, name=f"feed-{feed.name}", daemon=True).start()
        threading.Thread(target=self._report, name=f"health-{feed.name}", daemon=True).start()

    def _sink(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        self.replay.add(units)
        slate = self.runner.is_slate(streams)
        for attempt in range(3):
            if self.member is None:
                self.member = ray.get(self.pool.assign.remote(self.feed.name))
            index, member = self.member
            try:
                self._batch += 1
                self._in_flight.append((member.push.remote(self.feed.name, streams, units, slate, self._batch), slate))
                while len(self._in_flight) >= IN_FLIGHT:
                    ref, of_slate = self._in_flight[0]
                    done, signal, encoders = ray.get(ref)
                    self._in_flight.popleft()
                    self.replay.finished_through(done)
                    self.runner.encoders = encoders
                    if not of_slate:
                        self.runner.meter.signal(signal)
                return
            except RayTaskError as err:
                # The transcoder refused this media (undecodable input): the feed fails alone.
                self._in_flight.clear()
                raise SinkError(str(err.cause) if err.cause else str(err).splitlines()[-1]) from None
            except RayActorError:
                # The member died with the segment it was filling: the feed moves, and the new
                # member gets every unit since the last segment finished in all rungs (those of
                # the batches still in flight included: the replay holds them).
                self._in_flight.clear()
                self.member = ray.get(self.pool.assign.remote(self.feed.name, avoid=index))
                units = self.replay.pending()
        raise SinkError("no transcoder took the feed after 3 attempts")

    def _report(self) -> None:
        while True:
            try:
                self.edge.set_health.remote(self.feed.name, self.runner.status())
            except RayActorError:
                pass
            time.sleep(HEALTH_EVERY)

    def health(self) -> dict:
        return self.runner.status()

    def clock_status(self) -> dict:
        """This feed's clock as /api/clock shows it: offset, delay, error bound, last sync."""
        return self.stamp.status()

    def placement(self) -> int | None:
        return self.member[0] if self.member else None

    def stop(self) -> None:
        self.runner.stop()
