"""The loop a feed runs: open the source, read units in short batches, hand each batch on,
and on any failure record the reason and try again after a backoff.

The hand-off (`sink`) blocks until the transcoder has taken the batch: that is the feed's
backpressure policy. A paced source then falls behind the wall clock instead of buffering
without bound, and `Source` re-anchors its capture times when it does.

While a network input is away (`waiting`, `reconnecting`, `failed`), the loop thread is
blocked in `Source.open` or in the backoff, so the slate (slate.py) runs in a thread of its
own from `slate_after` seconds after the input's last media until a session opens again.
Only one of the two hands media on at a time: the loop stops the slate, and takes over the
timeline where the slate left it, before it reads the new session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..config import FeedConfig
from ..backoff import Backoff
from ..health import FeedHealth, State
from .hls_origin import OriginWatch, is_hls_pull
from .input_stats import InputMeter
from .slate import SlatePlayer
from .source import READ_TIMEOUT, InputQuiet, NoSender, Source, SourceEnded, SourceError, is_network
from .units import FeedStreams, MediaUnit, StreamInfo

Sink = Callable[[FeedStreams, list[MediaUnit]], None]
log = logging.getLogger(__name__)


def batch_seconds_for(part_duration: float) -> float:
    """Media per hand-off: a quarter of a part keeps batching out of the latency budget (a
    part cannot leave the transcoder before its last frame arrives), at most 0.2 s."""
    return max(0.02, min(0.2, part_duration / 4))


MIN_READ_TIMEOUT = 0.5  # a live input's packets come every few tens of ms


def read_timeout_for(source: str, slate_after: float | None) -> float:
    """How long a session may go without media before it ends. An input that goes quiet rather
    than closing (UDP, RTP, a peer gone without a word) is only known to be lost when this runs
    out, so with a slate it is the slate's delay: the slate then goes out on time, and the
    input is opened again (a TCP or RTMP sender that stalled that long has to reconnect). A
    pulled HTTP source arrives a segment at a time, with pauses as long as one: it keeps the
    default, and an HLS origin's is set from its playlist at each open (hls_origin.py)."""
    if not slate_after or source.startswith(("http://", "https://")):
        return READ_TIMEOUT
    return min(READ_TIMEOUT, max(MIN_READ_TIMEOUT, slate_after))


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
        resume: tuple[float, int] | None = None,
    ) -> None:
        self.feed = feed
        self.sink = sink
        self.batch_seconds = batch_seconds
        self.backoff = backoff or Backoff()
        # The feed's media timeline starts at the wall clock: segment seq = floor(t / D) then
        # never repeats across restarts, so the catalog and the ledger never see a seq twice.
        # `resume` (media end, input generation): where the transcoder's timeline for this feed
        # stands, when this runner takes over from one that died. The media goes on from there
        # (its dates from the wall clock), so no seq is skipped, which a start at the wall
        # clock would do for a restart longer than a segment, and the first session is a new
        # input to the transcoder.
        start = clock() if resume is None else resume[0]
        self.health = FeedHealth(feed.name, timeline_start=start, media_time=start)
        self.meter = InputMeter(feed.source)  # the input only, never the slate
        # The encoders as the transcoder last reported them (LiveTranscoder.encoder_status); None before.
        self.encoders: dict | None = None
        # Files and lavfi are ours to read: when they fail, that is a fault to fix, not a lost
        # signal to cover. A network input is someone else's and drops.
        self.slate_after = feed.slate_after if is_network(feed.source) else None
        self.source = Source(
            feed.source, loop=feed.loop, realtime=feed.realtime, options=feed.options, clock=clock, start_time=start,
            open_timeout=open_timeout, read_timeout=read_timeout_for(feed.source, self.slate_after),
        )
        if resume is not None:
            self.source.generation = resume[1]
        self.origin = OriginWatch(feed.source) if is_hls_pull(feed.source) else None
        self.clock = clock
        self.stop_event = threading.Event()
        self._slate: tuple[SlatePlayer, threading.Thread] | None = None
        self._sink_lock = threading.Lock()  # the loop and the slate never hand on at once
        self._last_media = time.monotonic()  # when the timeline's newest media went out
        self._last_video: StreamInfo | None = None  # the live input's, for the slate's size

    def stop(self) -> None:
        self.stop_event.set()
        slate = self._slate
        if slate is not None:
            slate[0].stop()
        self.source.interrupt()  # a relayed listener waits for its sender without end

    def run(self) -> None:
        self._last_media = time.monotonic()
        try:
            self._run()
        finally:
            self._end_slate()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            self._start_slate()
            where = self.source.listening
            if where and self.health.state == "starting":
                self.health.to("waiting", f"listener on {where}: no sender yet")
            try:
                options, read_timeout = None, None
                if self.origin is not None:
                    plan = self.origin.next_session()
                    if not plan.new:
                        self._wait("reconnecting", "the origin lists no segment it has not sent: waiting for it")
                        continue
                    options, read_timeout = plan.options, plan.read_timeout
                streams = self.source.open(options, read_timeout)
                self._end_slate()
                self._pump(streams)
            except SourceEnded:
                if self.source.loop:
                    continue
                if not is_network(self.feed.source):
                    self.health.to("ended", "end of source")
                    return
                if self._origin_ended():
                    return
                # A network input that ends (the sender disconnected) comes back: open it again
                # on the same timeline, so seqs continue and never repeat.
                self._wait("reconnecting", "input ended: waiting for the sender")
            except NoSender as err:
                # A listener with no sender yet: open it again at once (the wait is the open
                # timeout itself), so its port is closed only for that moment.
                self.health.to("waiting", str(err))
            except InputQuiet as err:
                # Gone quiet is gone: the sender is awaited as after a close, under the slate.
                if self._origin_ended():
                    return
                self._wait("reconnecting", f"{err}: waiting for the sender")
            except (SourceError, SinkError) as err:
                self._fail(str(err))
            except Exception as err:  # noqa: BLE001 - e.g. a Ray error from the next stage
                # Whatever breaks, the feed's thread lives on: the failure is shown with its
                # type and tried again, never a feed that says `live` with nobody feeding it.
                self._fail(f"unexpected {type(err).__name__}: {err}")
            finally:
                self.source.end_session()
                self.meter.end_session()
        self.health.to("stopped")

    def _origin_ended(self) -> bool:
        """After a session of an HLS pull: whether its origin ended the stream (then the feed
        has ended; opened again, a finished playlist would play from its start once more)."""
        if self.origin is None or not self.origin.session_ended():
            return False
        self.health.to("ended", "the origin ended the stream (EXT-X-ENDLIST)")
        return True

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

    def is_slate(self, streams: FeedStreams) -> bool:
        """Whether media handed on with `streams` is the slate's (its frames must not be judged
        as the input's picture). The slate has a generation of its own, and delivers only while
        it is the feed's current slate."""
        slate = self._slate
        return slate is not None and slate[0].streams.generation == streams.generation

    def status(self) -> dict:
        """The feed as /api/feeds shows it: its health and what its input is doing."""
        dates = {"reanchors": self.source.reanchors, "last_reanchor": self.source.last_reanchor}
        return {**self.health.as_dict(),
                "input": {**self.meter.snapshot(time.time()), **(self.source.link() or {}), "dates": dates},
                "encoders": self.encoders}

    def _deliver(self, streams: FeedStreams, batch: list[MediaUnit]) -> None:
        self._hand_on(streams, batch)
        self.meter.observe(streams, batch, time.time())
        self._last_video = streams.video
        if self.health.state != "live":
            self.health.to("live")
            self.backoff.reset()

    def _hand_on(self, streams: FeedStreams, batch: list[MediaUnit]) -> None:
        with self._sink_lock:
            self.sink(streams, batch)
            self.health.media_time = batch[-1].time
            self._last_media = time.monotonic()

    def _start_slate(self) -> None:
        """Arm the slate for the time the input is away (it goes out `slate_after` seconds
        after the input's last media); one slate per outage, kept across failed attempts, and
        started again (after the backoff) if the next stage refused it."""
        if not self.slate_after or self.stop_event.is_set():
            return
        if self._slate is not None:
            if self._slate[1].is_alive():
                return
            self._end_slate()
        player = SlatePlayer(
            self.feed.name, self._last_video, self.source.new_generation(), self._deliver_slate,
            timeline=lambda: self.source.next_time, lost_at=self._last_media, delay=self.slate_after,
            clock=self.clock, batch_seconds=self.batch_seconds,
        )
        thread = threading.Thread(target=self._play, args=(player,), name=f"slate-{self.feed.name}", daemon=True)
        self._slate = (player, thread)
        thread.start()
        if self.stop_event.is_set():  # stop() came before the slate was there to stop
            player.stop()

    def _play(self, player: SlatePlayer) -> None:
        try:
            player.run()
        except Exception as err:  # the next stage refused the slate: the feed is dark, but runs
            log.warning("feed %s: slate stopped: %s", self.feed.name, err)
        finally:
            self.health.slate, self.health.slate_since = False, None

    def _deliver_slate(self, streams: FeedStreams, batch: list[MediaUnit]) -> None:
        self._hand_on(streams, batch)
        if not self.health.slate:
            self.health.slate, self.health.slate_since = True, time.time()

    def _end_slate(self) -> None:
        """Stop the slate, and continue the timeline after its last frame."""
        if self._slate is None:
            return
        player, thread = self._slate
        player.stop()
        thread.join()
        self._slate = None
        if player.next_time is not None:
            self.source.skip_to(player.next_time)

    def _fail(self, reason: str) -> None:
        self._wait("failed", reason)

    def _wait(self, state: State, reason: str) -> None:
        # The session is over: close it and arm the slate now, so that the slate is not late
        # by the backoff (end_session is run again by the loop; twice is the same as once).
        self.source.end_session()
        self.meter.end_session()
        self._start_slate()
        delay = self.backoff.next_delay()
        self.health.to(state, reason, retry_at=time.time() + delay)
        self.stop_event.wait(delay)
