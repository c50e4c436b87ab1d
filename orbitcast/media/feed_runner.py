"""The loop a feed runs: open the source, read units in short batches, hand each batch on,
and on any failure record the reason and try again after a backoff.

The hand-off (`sink`) blocks until the transcoder has taken the batch: that is the feed's
backpressure policy. A paced source then falls behind the wall clock instead of buffering
without bound, and `Source` re-anchors its capture times when it does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..config import FeedConfig
from ..backoff import Backoff
from ..health import FeedHealth, State
from .source import NoSender, Source, SourceEnded, SourceError, is_network
from .units import FeedStreams, MediaUnit

Sink = Callable[[FeedStreams, list[MediaUnit]], None]


def batch_seconds_for(part_duration: float) -> float:
    """Media per hand-off: a quarter of a part keeps batching out of the latency budget (a
    part cannot leave the transcoder before its last frame arrives), at most 0.2 s."""
    return max(0.02, min(0.2, part_duration / 4))


class SinkError(Exception):
    """The next stage refused the feed's media (e.g. it cannot be decoded); str is the reason."""


class FeedRunner:
    def __init__(
        self,
        feed: FeedConfig,
        sink: Sink,
        clock: Callable[[], float] = time.time,
        batch_seconds: float = 0.2,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        self.feed = feed
        self.sink = sink
        self.batch_seconds = batch_seconds
        self.backoff = backoff or Backoff()
        # The feed's media timeline starts at the wall clock: segment seq = floor(t / D) then
        # never repeats across restarts, so the catalog and the ledger never see a seq twice.
        start = clock()
        self.health = FeedHealth(feed.name, timeline_start=start, media_time=start)
        self.source = Source(
            feed.source, loop=feed.loop, realtime=feed.realtime, options=feed.options, clock=clock, start_time=start,
            open_timeout=open_timeout,
        )
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                streams = self.source.open()
                self._pump(streams)
            except SourceEnded:
                if self.source.loop:
                    continue
                if not is_network(self.feed.source):
                    self.health.to("ended", "end of source")
                    return
                # A network input that ends (the sender disconnected) comes back: open it again
                # on the same timeline, so seqs continue and never repeat.
                self._wait("reconnecting", "input ended: waiting for the sender")
            except NoSender as err:
                # A listener with no sender yet: open it again at once (the wait is the open
                # timeout itself), so its port is closed only for that moment.
                self.health.to("waiting", str(err))
            except (SourceError, SinkError) as err:
                self._fail(str(err))
            finally:
                self.source.end_session()
        self.health.to("stopped")

    def _pump(self, streams: FeedStreams) -> None:
        batch: list[MediaUnit] = []
        try:
            for unit in self.source.units():
                if self.stop_event.is_set():
                    return
                batch.append(unit)
                if unit.time - batch[0].time >= self.batch_seconds:
                    self._deliver(streams, batch)
                    batch = []
        finally:
            # What was read before the source ended or broke is still good media.
            if batch and not self.stop_event.is_set():
                self._deliver(streams, batch)

    def _deliver(self, streams: FeedStreams, batch: list[MediaUnit]) -> None:
        self.sink(streams, batch)
        self.health.media_time = batch[-1].time
        if self.health.state != "live":
            self.health.to("live")
            self.backoff.reset()

    def _fail(self, reason: str) -> None:
        self._wait("failed", reason)

    def _wait(self, state: State, reason: str) -> None:
        delay = self.backoff.next_delay()
        self.health.to(state, reason, retry_at=time.time() + delay)
        self.stop_event.wait(delay)
