"""The transcoder pool: members that each run the live transcoders of the feeds placed on them."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from orbitcast.config import OrbitcastConfig
from orbitcast.energy.accounting import MemberEnergy
from orbitcast.media.handoffs import HandOffs
from orbitcast.media.overload import OverloadSteps, steps_for
from orbitcast.media.placement import Placement
from orbitcast.media.replay import Openings
from orbitcast.media.signal_health import HOLD_S
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.media.turns import Turns
from orbitcast.media.units import FeedStreams, MediaUnit
from orbitcast.priority import give_way
from orbitcast.standby import DEATH_NOTICE_ENV, NotThisIncarnation, Standby

from .analysis import AnalysisLink

log = logging.getLogger(__name__)
# Hand-offs to a feed's packager that may be in flight before the transcoder waits: parts go
# on as soon as they are cut, and a packager that falls behind slows its feed, not the pool.
IN_FLIGHT = 8
WATCH_S = 30.0  # a watch call to the active packager answers after this, and is made again
# A packager still starting answers once started (the pipeline's start: seconds), one that died
# fails the call; only a packager on a node lost and not yet noticed leaves the call waiting.
INCARNATION_WAIT_S = 60.0
FIND_S = 2.0  # a member started anew asks both packagers which has the feed


@ray.remote(max_restarts=-1, max_concurrency=8)
class Transcoder:
    """One pool member. A restarted member comes back empty; feeds then open again."""

    def __init__(self, config: OrbitcastConfig, packagers: dict[str, Standby["ray.actor.ActorHandle"]],
                 governor: "ray.actor.ActorHandle | None" = None) -> None:
        give_way()  # bulk work: the viewer path runs first (orbitcast/priority.py)
        self.config = config
        self.packagers = packagers  # per feed its packager and standby; this member's own choice
        self._feeds: dict[str, LiveTranscoder] = {}
        self._published_init: dict[str, dict[str, bytes]] = {}
        self._in_flight: dict[str, HandOffs[ray.ObjectRef]] = {}  # per feed, to its packager (media/handoffs.py)
        self._watch: dict[str, tuple[int, ray.ObjectRef]] = {}  # per feed: (packager watched, its watch call)
        self._hand_locks: dict[str, threading.Lock] = {}  # per feed: its hand-offs, the watcher's and the push's
        self._turns: dict[str, Turns] = {}
        self._openings = Openings()
        self._analysis: dict[str, AnalysisLink | None] = {}  # feed -> its hand-off to analysis (None: off)
        self._guard = threading.Lock()
        # joules per segment (docs/energy.md): this process's CPU time, the host's energy
        self.energy = MemberEnergy.for_member(config.energy, config.transcoder_cpus) if config.energy.enabled else None
        # the site's plan (energy.follow_plan): the rungs and frame rate of the hour, asked for
        # every poll_s and handed to every feed here, which takes them at its next segment
        self._ladder: tuple[tuple[str, ...], float | None, tuple[str, ...], str] | None = None
        if governor is not None:
            threading.Thread(target=self._follow_plan, args=(governor,), name="follow-plan", daemon=True).start()

    def ping(self) -> int:
        return len(self._feeds)

    def push(
        self, feed: str, streams: FeedStreams, units: list[MediaUnit], slate: bool = False, batch: int | None = None,
        parts_from: int | None = None, opening: bool = True,
    ) -> tuple[int | None, dict, dict]:
        """Transcode a batch (`slate`: the feed's slate, not its input; `batch`: its number, the
        order in which the feed's batches are taken, see orbitcast/media/turns.py; `parts_from`:
        for a feed taken over from a member that died, the first seq whose parts may go out,
        LiveTranscoder's `parts_from_seq`, used when the feed is new here; `opening`: the
        feed's first batch here or a replay, else refused where the feed is not open here,
        `Openings`); returns the
        highest seq finished in every rung (see ReplayBuffer), the input's picture and sound
        states, and the encoders' (LiveTranscoder.encoder_status)."""
        with self._guard:
            self._openings.check(feed, batch, opening)  # before its turn: a refusal takes none
            turns = self._turns.setdefault(feed, Turns())
        with turns.turn(batch):
            tr = self._feeds.get(feed)
            if tr is None:
                cfg = self.config
                hold = next((f.signal_hold for f in cfg.feeds if f.name == feed), HOLD_S)
                link = self._analysis.setdefault(feed, AnalysisLink.for_feed(feed, cfg.analysis, cfg.segment_duration))
                over = cfg.ladder.overload
                steps = steps_for(cfg.ladder.preset, over.presets)
                tr = LiveTranscoder(feed, cfg.ladder, cfg.segment_duration, cfg.part_duration, streams,
                                    analyse=not slate, signal_hold=hold, frame_tap=link.tap if link else None,
                                    overload=OverloadSteps(steps, over.behind, over.calm) if steps else None,
                                    parts_from_seq=parts_from)
                if self.energy is not None:
                    tr.energy = self.energy.feed(feed, cfg.ladder.rungs, tr.fps)
                if self._ladder is not None:
                    tr.set_ladder(*self._ladder)
                self._feeds[feed] = tr
            elif tr.streams.generation != streams.generation:
                tr.change_input(streams, analyse=not slate)
            out = tr.push(units)
            link = self._analysis.get(feed)
            if link is not None:
                link.send()  # never waits: drops (counted) when analysis is behind
            if out or self._new_inits(feed, tr):
                # every rung's init each time, not the new ones only: a packager that Ray
                # started again has none, and its parts name the init they play with
                self._hand_on(feed, tr.init_segments, out, tr.published_through)
            return self._handed_through(feed, tr), tr.input_signal, tr.encoder_status

    def resume_point(self, feed: str) -> tuple[float, int] | None:
        """Where this feed's media ends here (LiveTranscoder.resume_point); None: not here."""
        with self._guard:
            tr = self._feeds.get(feed)
        return tr.resume_point if tr is not None else None

    def _follow_plan(self, governor: "ray.actor.ActorHandle") -> None:
        poll = self.config.energy.follow_plan.poll_s
        failures = 0
        while True:
            try:
                got = ray.get(governor.ladder.remote(), timeout=max(5.0, poll))
                ladder = (tuple(got["rungs"]), got["fps"], tuple(got["fast"]), got["faster_preset"])
                failures = 0
            except (ray.exceptions.RayError, GetTimeoutError) as err:
                failures += 1
                if failures == 1:  # the ladder stays as it was until the governor answers again
                    log.warning("the energy plan's governor did not answer: %s", err)
                time.sleep(poll)
                continue
            if ladder != self._ladder:
                self._ladder = ladder
                with self._guard:
                    feeds = list(self._feeds.values())
                for tr in feeds:
                    tr.set_ladder(*ladder)
            time.sleep(poll)

    def energy_report(self) -> dict | None:
        """Recent watts per feed and rung, joules per media second (None: accounting is off)."""
        return self.energy.report() if self.energy is not None else None

    def _new_inits(self, feed: str, tr: LiveTranscoder) -> dict[str, bytes]:
        known = self._published_init.setdefault(feed, {})
        new = {r: init for r, init in tr.init_segments.items() if known.get(r) != init}
        known.update(new)
        return new

    def _hand_on(self, feed: str, inits: dict[str, bytes], out: list, through: int | None) -> None:
        # The feed's packager runs its calls in the order they were made, so parts, segments
        # and inits reach it in the order they were cut without waiting for each one here.
        with self._guard:
            lock = self._hand_locks.get(feed)
            if lock is None:
                lock = self._hand_locks[feed] = threading.Lock()
                if self.packagers[feed].has_standby:
                    threading.Thread(target=self._watch_packager, args=(feed,), name=f"watch-{feed}", daemon=True).start()
        with lock:
            pending = self._in_flight.setdefault(feed, HandOffs(IN_FLIGHT))
            recover = functools.partial(self._recover, feed)
            # what the packager took is collected first: sent again is only what it had not done
            pending.settle(_done, ray.get, recover)  # ray.get raises what the packager raised
            self._fail_over_if_died(feed)
            pending.add(self._sender(feed)((inits, out)), through, (inits, out))
            pending.settle(_done, ray.get, recover)

    def _recover(self, feed: str, err: BaseException) -> "Callable[[tuple], ray.ObjectRef] | None":
        """For a hand-off that failed: where to send it and those after it (HandOffs.settle)."""
        packagers = self.packagers[feed]
        if not packagers.has_standby:
            return None  # Ray retries on the packager it starts again
        if isinstance(err, NotThisIncarnation):  # it died and came back since we asked
            packagers.started_again()
        elif isinstance(err, RayActorError):  # died with the hand-off in flight
            log.warning("the packager of %s died (%s): its standby takes the feed", feed, type(err).__name__)
            packagers.fail_over()
        else:
            return None  # the packager's own error: the feed sees it
        return self._sender(feed)

    def _fail_over_if_died(self, feed: str) -> None:
        """Under the feed's hand-off lock: the active packager died, as its watch call says:
        every hand-off not taken goes to the standby now."""
        packagers = self.packagers[feed]
        if packagers.has_standby and self._died(feed, packagers):
            log.warning("the packager of %s died: its standby takes the feed", feed)
            packagers.fail_over()
            self._in_flight[feed].send_again(self._sender(feed))

    def _watch_packager(self, feed: str) -> None:
        """Fails the feed over as soon as the watch call to its packager ends, not at the next
        hand-off (up to a part later)."""
        while True:
            watched = self._watch.get(feed)
            if watched is None:  # armed by the next hand-off
                time.sleep(0.05)
                continue
            try:
                ray.wait([watched[1]], timeout=WATCH_S + 5)
                with self._hand_locks[feed]:
                    if feed in self._in_flight:
                        self._fail_over_if_died(feed)
            except Exception:  # noqa: BLE001 - the next hand-off fails over as well; keep watching
                log.exception("watching the packager of %s failed", feed)
                time.sleep(0.5)

    def _sender(self, feed: str) -> "Callable[[tuple], ray.ObjectRef]":
        """How to hand off to the active packager now. With a standby: to the incarnation asked
        of it (asked once, and again after it died), not retried by Ray on a packager started
        again (that takes a second or more): the hand-off goes to the standby instead. Where
        neither answers (both gone with a node), as without a standby: Ray's retry on the
        packager it starts again."""
        packagers = self.packagers[feed]
        if packagers.has_standby:
            if not packagers.found:  # this member's first hand-off of the feed
                packagers.found_publishing(_ask_all([p.whereabouts.remote() for p in packagers.members], FIND_S))
            for _ in packagers.members:
                if packagers.incarnations[packagers.index] is not None:
                    break
                try:  # the standby answers at once; one Ray is starting again, once started
                    packagers.incarnations[packagers.index] = ray.get(
                        packagers.active.incarnation.remote(), timeout=INCARNATION_WAIT_S)
                except (RayActorError, GetTimeoutError):
                    packagers.fail_over()
            incarnation = packagers.incarnations[packagers.index]
            if incarnation is not None:
                target = packagers.active
                watched = self._watch.get(feed)
                if watched is None or watched[0] != packagers.index:
                    self._watch[feed] = (packagers.index, target.alive.options(max_task_retries=0).remote(WATCH_S))
                return lambda payload: target.publish.options(max_task_retries=0).remote(*payload, incarnation)
            log.warning("no packager of %s answers: hand-offs wait for Ray to start one again", feed)
        target = packagers.active
        return lambda payload: target.publish.remote(*payload)

    def _died(self, feed: str, packagers: Standby["ray.actor.ActorHandle"]) -> bool:
        """Whether the call in flight that watches the active packager says it died (what was
        handed to it since would otherwise wait for Ray to start it again)."""
        watched = self._watch.get(feed)
        if watched is None or watched[0] != packagers.index or not _done(watched[1]):
            return False
        del self._watch[feed]  # armed again by the next _sender
        try:
            ray.get(watched[1])
        except RayActorError:
            return True
        except ray.exceptions.RayError:
            pass
        return False

    def _handed_through(self, feed: str, tr: LiveTranscoder) -> int | None:
        pending = self._in_flight.get(feed)
        return pending.taken_through(tr.published_through) if pending is not None else tr.published_through


def _ask_all(refs: list[ray.ObjectRef], timeout: float) -> list:
    """Each call's answer, None where it failed or did not come within `timeout`."""
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    answers = []
    for ref in refs:
        try:
            answers.append(ray.get(ref) if ref in ready else None)
        except ray.exceptions.RayError:
            answers.append(None)
    return answers


def _done(ref: ray.ObjectRef) -> bool:
    ready, _ = ray.wait([ref], timeout=0)
    return bool(ready)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, concurrency_groups={"read": 2})
class TranscoderPool:
    """Places feeds on members (`Placement`) and moves a feed off a member that died. Following
    the site's plan (energy.follow_plan), it stops the standby members beyond the plan's pool
    cap and starts them again when the cap lifts."""

    def __init__(self, config: OrbitcastConfig, packagers: dict[str, Standby["ray.actor.ActorHandle"]],
                 governor: "ray.actor.ActorHandle | None" = None) -> None:
        # DEATH_NOTICE_ENV: a member hears at once that its feed's packager died (its standby)
        self._start = lambda: Transcoder.options(
            num_cpus=config.transcoder_cpus, runtime_env={"env_vars": DEATH_NOTICE_ENV}).remote(config, packagers, governor)
        self.members = [self._start() for _ in range(config.transcoders)]
        self.placement = Placement(len(self.members))
        self.parked: set[int] = set()  # members stopped under the plan's cap
        self.cap: int | None = None
        self._lock = threading.Lock()
        if governor is not None:
            threading.Thread(target=self._follow_cap, args=(governor, config.energy.follow_plan.poll_s),
                             name="pool-cap", daemon=True).start()

    def assign(self, feed: str, avoid: int | None = None) -> tuple[int, "ray.actor.ActorHandle"]:
        with self._lock:
            index = self.placement.assign(feed, self._alive, avoid)
            return index, self.members[index]

    @ray.method(concurrency_group="read")
    def placed(self, feed: str) -> "tuple[int, ray.actor.ActorHandle] | None":
        """The member `feed` is on now, without placing it: answered while an `assign` waits on a
        member's ping (up to 10 s for one on a lost node)."""
        index = self.placement.as_dict().get(feed)
        return (index, self.members[index]) if index is not None else None

    def _alive(self, index: int) -> bool:
        if index in self.parked:
            return False
        try:
            ray.get(self.members[index].ping.remote(), timeout=10)
        except (RayActorError, GetTimeoutError):
            return False
        return True

    def _follow_cap(self, governor: "ray.actor.ActorHandle", poll: float) -> None:
        me = ray.get_runtime_context().current_actor  # the governor measures the pipeline through it
        while True:
            try:
                cap = ray.get(governor.ladder.remote(me), timeout=max(5.0, poll))["members"]
            except (ray.exceptions.RayError, GetTimeoutError):
                time.sleep(poll)  # the pool stays as it is until the governor answers again
                continue
            with self._lock:
                park = self.placement.to_park(cap)
                for i in park - self.parked:
                    ray.kill(self.members[i], no_restart=True)
                for i in self.parked - park:
                    self.members[i] = self._start()
                self.parked, self.cap = park, cap
            time.sleep(poll)

    def state(self) -> dict:
        """Members, the plan's cap (None: none) and the members stopped under it."""
        with self._lock:
            return {"members": len(self.members), "cap": self.cap, "parked": sorted(self.parked)}

    def placements(self) -> dict[str, int]:
        return self.placement.as_dict()

    def energy(self, timeout: float = 2.0) -> list[dict]:
        """Each answering member's energy report (members that are away or parked are left out)."""
        with self._lock:
            members = [(i, m) for i, m in enumerate(self.members) if i not in self.parked]
        refs = {m.energy_report.remote(): i for i, m in members}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        out = []
        for ref in ready:
            try:
                report = ray.get(ref)
            except ray.exceptions.RayError:  # died or failed meanwhile: left out
                continue
            if report is not None:
                out.append({"member": refs[ref], **report})
        return sorted(out, key=lambda r: r["member"])

    def member(self, index: int) -> "ray.actor.ActorHandle":
        return self.members[index]
