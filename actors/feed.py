"""FeedActor: runs a feed's source loop in a thread and hands batches to the feed's transcoder
on a pool member, moving to another member if that one dies.

A feed may have two, a pair (`standby_feeds`): one holds the feed, the other stands by, its
imports done and its clock in step, with a call to the holder in flight; when that call fails
(the holder died) it takes the feed from where the transcoder's timeline stands, a few tens of
milliseconds later instead of the second Ray takes to start the holder again. The one Ray starts
again asks the other what it does and stands by (actors/pair.py)."""

from __future__ import annotations

import threading
import time
from collections import deque

import ray
from ray.exceptions import RayActorError, RayTaskError

from orbitcast.config import FeedConfig
from orbitcast.media.boundaries import segment_index
from orbitcast.media.feed_runner import FeedRunner, SinkError, batch_seconds_for
from orbitcast.media.replay import NotOpenHere, ReplayBuffer
from orbitcast.media.units import FeedStreams, MediaUnit
from orbitcast.standby import HOLDING

from .clock_authority import NAME as CLOCK_NAME
from .pair import PairRole
from .stamping_clock import StampingClock

HEALTH_EVERY = 1.0
# Batches handed to the transcoder before the feed waits for the oldest: the next batch is read
# and carried while the one before is encoded (one at a time, the feed's thread sat idle for a
# quarter of the time, and a demo beside a browser on two cores fell behind the wall clock).
IN_FLIGHT = 2
RESUME_ASK_S = 5.0  # a restarted feed's wait for its transcoder's resume point
# The member the feed is on answers its resume point in milliseconds; one that does not answer in
# this is on a lost node (a call to it waits until Ray has noticed and started it again, empty).
MEMBER_ASK_S = 2.0


@ray.remote(num_cpus=0, max_restarts=-1, concurrency_groups={"watch": 4})
class FeedActor:
    def __init__(
        self,
        feed: FeedConfig,
        pool: "ray.actor.ActorHandle",
        clock: "ray.actor.ActorHandle",
        edge: "ray.actor.ActorHandle | list[ray.actor.ActorHandle]",
        segment_duration: float = 2.0,
        part_duration: float = 0.5,
        pair: tuple[int, str] | None = None,
    ) -> None:
        """`pair`: (this one's place in the feed's pair, 0 the one the feed starts on; the other's
        actor name); None: no standby."""
        self.feed = feed
        self.pool = pool
        # the edge, or the edge and its standby: both are told the feed's health (the one that
        # takes over knows it at once), and asked where the feed's media ends
        self.edges = list(edge) if isinstance(edge, (list, tuple)) else [edge]
        self.clock = clock
        # Capture times (hence every segment's program date-time) come from a clock kept in
        # step with the authority; start() syncs before the source can read it.
        self.stamp = StampingClock(clock, f"feed:{feed.name}" + (f"#{pair[0] + 1}" if pair and pair[0] else ""),
                                   authority_name=CLOCK_NAME,
                                   skew_offset_s=feed.clock_skew_offset_s,
                                   skew_drift_ppm=feed.clock_skew_drift_ppm).start()
        self.member: tuple[int, ray.actor.ActorHandle] | None = None
        self._batch = 0
        self._in_flight: deque[tuple[ray.ObjectRef, bool]] = deque()  # (push, of the slate), oldest first
        self.replay = ReplayBuffer(segment_duration)
        self.segment_duration = segment_duration
        self._sent_through = 0.0  # media time of the newest unit handed to a member
        self._parts_from: int | None = None  # for a member that takes the feed over (Transcoder.push)
        self._opening = True  # the next batch opens the feed on its member (replay.Openings)
        self._batch_seconds = batch_seconds_for(part_duration)
        self.runner: FeedRunner | None = None  # while this one holds the feed
        self._stopped = False
        restarted = ray.get_runtime_context().was_current_actor_reconstructed
        threading.Thread(target=self._report, name=f"health-{feed.name}", daemon=True).start()
        self.pair = (PairRole(pair[0], pair[1], lambda why: self._hold(self._resume_point()), restarted,
                              f"feed {feed.name}") if pair is not None else None)
        if self.pair is None or self.pair.holding:
            self._hold(self._resume_point() if restarted else None)

    @property
    def _role(self) -> str:
        return self.pair.role if self.pair is not None else HOLDING

    def _hold(self, resume: tuple[float, int] | None) -> None:
        if self._stopped:
            return
        self.runner = FeedRunner(self.feed, self._sink, clock=self.stamp.now, batch_seconds=self._batch_seconds,
                                 resume=resume)
        threading.Thread(target=self.runner.run, name=f"feed-{self.feed.name}", daemon=True).start()

    def _sink(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        self.replay.add(units)
        slate = self.runner.is_slate(streams)
        for attempt in range(3):
            if self.member is None:
                self.member = ray.get(self.pool.assign.remote(self.feed.name))
            index, member = self.member
            try:
                self._batch += 1
                if units:
                    self._sent_through = max(self._sent_through, max(u.time for u in units))
                self._in_flight.append((member.push.remote(self.feed.name, streams, units, slate, self._batch,
                                                           self._parts_from, self._opening), slate))
                self._opening = False
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
                if not isinstance(err.cause, NotOpenHere):
                    # The transcoder refused this media (undecodable input): the feed fails alone.
                    self._in_flight.clear()
                    raise SinkError(str(err.cause) if err.cause else str(err).splitlines()[-1]) from None
                # The member was started again since (Ray had queued this batch for it): as below,
                # but it lives, so the feed stays there.
                self._replay_from_start()
                units = self.replay.pending()
            except RayActorError:
                # The member died with the segment it was filling: the feed moves, and the new
                # member gets every unit since the last segment finished in all rungs (those of
                # the batches still in flight included: the replay holds them).
                self._replay_from_start()
                self.member = ray.get(self.pool.assign.remote(self.feed.name, avoid=index))
                units = self.replay.pending()
        raise SinkError("no transcoder took the feed after 3 attempts")

    def _replay_from_start(self) -> None:
        self._in_flight.clear()
        self._opening = True
        # The lost member may have sent parts of every seq up to the newest it was given.
        self._parts_from = segment_index(self._sent_through, self.segment_duration) + 1

    def _resume_point(self) -> tuple[float, int] | None:
        """Taking the feed over (the standby, or one Ray started again): where its transcoder's
        timeline stands, or, where the member died too (a node lost), where the edge's media of
        the feed ends.
        None where neither answers: the feed starts at the wall clock, and a restart longer
        than a segment leaves gaps."""
        where = None
        try:
            # where the feed is now: asked to place it anew, the pool could choose another member
            # (the least loaded), one started again empty after the feed had moved off it
            where = ray.get(self.pool.placed.remote(self.feed.name), timeout=RESUME_ASK_S)
            if where is not None:
                point = ray.get(where[1].resume_point.remote(self.feed.name), timeout=MEMBER_ASK_S)
                if point is not None:
                    self.member = where
                    return point
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            pass
        try:  # the feed's member is gone or has it no more: another member takes it
            self.member = ray.get(self.pool.assign.remote(self.feed.name, avoid=where[0] if where else None),
                                  timeout=RESUME_ASK_S)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            self.member = None
        asked = [e.resume_at.remote(self.feed.name) for e in self.edges]
        ready, _ = ray.wait(asked, num_returns=len(asked), timeout=RESUME_ASK_S)
        answers = []
        for ref in ready:
            try:
                answers.append(ray.get(ref))
            except ray.exceptions.RayError:
                pass
        at = max((a for a in answers if a is not None), default=None)
        if at is None:
            return None
        # the member that will take the feed makes the edge's open seq again: whole only
        self._parts_from = segment_index(at, self.segment_duration) + 1
        return at, 0  # a member that never had the feed: any generation is new

    def _report(self) -> None:
        while True:
            runner = self.runner
            if runner is not None:  # the one standing by has nothing to say of the feed
                status = runner.status()
                for edge in self.edges:
                    try:
                        edge.set_health.remote(self.feed.name, status)
                    except RayActorError:
                        pass
            time.sleep(HEALTH_EVERY)

    @ray.method(concurrency_group="watch")
    def watch(self, seconds: float) -> str:
        """This one's role in the feed's pair (actors/pair.py)."""
        return self.pair.watch(seconds) if self.pair is not None else HOLDING

    @ray.method(concurrency_group="watch")
    def role(self) -> str:
        return self._role

    def health(self) -> dict:
        runner = self.runner
        return runner.status() if runner is not None else {"state": self._role}

    def clock_status(self) -> dict:
        """This feed's clock as /api/clock shows it: offset, delay, error bound, last sync."""
        return self.stamp.status()

    def placement(self) -> int | None:
        """The pool member this one hands the feed to; None while it does not hold the feed."""
        return self.member[0] if self.member and self.runner is not None else None

    def stop(self) -> None:
        self._stopped = True
        if self.pair is not None:
            self.pair.stop()
        if self.runner is not None:
            self.runner.stop()
