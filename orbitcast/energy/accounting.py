"""Energy accounting of one transcoder pool member (one process running the live transcoders
of the feeds placed on it): joules per segment of every rung, and recent watts.

How a member's energy reaches a segment (docs/energy.md, "Accounting in the pipeline"):

1. At segment boundaries (at most every `min_interval_s`) the member closes an interval: the
   host's energy from `EnergyMeter.sample()` (RAPL or the model) and this process's CPU time
   over it (`time.process_time`: every thread of the process, x264's own included).
2. The process's CPU time is divided among its feeds by the CPU time their `push` calls took
   on the calling thread (`time.thread_time`): the part of the work that can be read per
   feed. x264's threads are not in it, but every feed runs the same ladder, so they stand in
   the same ratio to it.
3. A feed's CPU time is divided among its rungs by their measured costs (`split_cpu` with
   `LadderCosts.weights`): the feed's shared work (decode, audio) goes with it pro rata.
4. `attribute()` gives each (feed, rung) its joules: active energy by CPU time over the host's
   CPU time, idle power by wall time times `idle_share` (the CPUs this member reserves over
   the host's).
5. Each rung's joules add up until its next segment is cut; that segment takes them.

A segment cut before any interval of its feed was closed carries no figure (None), never 0.
Everything here is called from the transcoder's threads: one lock guards the state.

Besides the recent window, the report carries running totals since this accountant began
(joules per feed, rung and source; media seconds stamped; this process's joules) under an
`instance` id: what /metrics turns into counters (orbitcast/metrics/energy.py).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from ..config import Rung
from ..segment import Segment, SegmentEnergy
from .attribution import WorkItem, attribute, split_cpu
from .config import EnergyConfig
from .costs import LadderCosts
from .errors import EnergyError
from .meter import RAPL_REL_ERROR, EnergyMeter, IntervalEnergy

T = TypeVar("T")
# Closing an interval reads /proc/stat (and RAPL): tens of microseconds. Segment boundaries of
# several feeds may come close together; nearer than this they share one interval.
MIN_INTERVAL_S = 0.25
WINDOW_S = 30.0  # "recent" in the report: watts and joules per media second over this
CALIBRATE_EVERY = 60  # RAPL intervals between fits of the power model (its idle watts split idle)


@dataclass
class _Open:
    """A rung's joules since its last segment was cut."""

    joules: float = 0.0
    error: float = 0.0
    sources: set[str] | None = None

    def add(self, joules: float, error: float, source: str) -> None:
        self.joules += joules
        self.error += error  # one meter's error runs the same way in every interval: linear sum
        self.sources = (self.sources or set()) | {source}

    def take(self) -> SegmentEnergy | None:
        if self.sources is None:
            return None
        # a figure partly modelled is as good as the model
        out = SegmentEnergy(self.joules, "model" if "model" in self.sources else "rapl", self.error)
        self.joules, self.error, self.sources = 0.0, 0.0, None
        return out


@dataclass
class _Tally:
    """A (feed, rung) in the report: joules attributed over the window, and its segments'."""

    joules: float = 0.0
    error: float = 0.0
    media_s: float = 0.0
    segment_joules: float = 0.0
    segments: int = 0


@dataclass(frozen=True)
class _Interval:
    end: float  # monotonic
    energy: IntervalEnergy
    process_cpu_s: float
    attributed: dict[tuple[str, str], tuple[float, float]]  # (feed, rung) -> (joules, error)


class MemberEnergy:
    """One pool member's accountant; `feed()` gives the hook a feed's `LiveTranscoder` calls."""

    def __init__(
        self,
        cfg: EnergyConfig,
        *,
        idle_share: float,
        meter: EnergyMeter | None = None,
        process_cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = MIN_INTERVAL_S,
        window_s: float = WINDOW_S,
    ) -> None:
        if not 0 <= idle_share <= 1:
            raise EnergyError(f"idle_share must be within 0..1, got {idle_share}")
        self.costs = LadderCosts.from_config(cfg.costs)
        self.meter = meter if meter is not None else EnergyMeter.from_config(cfg.power)
        self.idle_share = idle_share
        self._process_cpu = process_cpu
        self._clock = clock
        self._min_interval = min_interval_s
        self._window = window_s
        self._lock = threading.Lock()
        self._cpu_mark = process_cpu()
        self._last_close = clock()
        self._pushed: dict[str, float] = {}  # feed -> thread CPU of its pushes since the last close
        self._weights: dict[str, dict[str, float]] = {}  # feed -> rung -> relative cost
        self._open: dict[tuple[str, str], _Open] = {}
        self._intervals: deque[_Interval] = deque()
        # (monotonic, feed, rung, media seconds, joules, error) of the segments stamped
        self._segments: deque[tuple[float, str, str, float, float, float]] = deque()
        self._rapl_intervals = 0
        self.errors = 0  # intervals lost to an unreadable counter
        # running totals since this accountant began, for counters; a new instance (a member
        # restarted) starts from 0, which the metrics hub tells from a fall
        self.instance = secrets.token_hex(8)
        self._joules_total: dict[tuple[str, str, str], float] = {}  # (feed, rung, source) -> J
        self._media_total: dict[tuple[str, str], list[float]] = {}  # (feed, rung) -> [media s, segments]
        self._process_total: dict[str, float] = {}  # source -> this process's J (standby idle included)

    @classmethod
    def for_member(cls, cfg: EnergyConfig, member_cpus: float) -> "MemberEnergy":
        """A member that reserves `member_cpus` of this host's CPUs carries that share of its idle power."""
        cpus = cfg.power.cpus or os.cpu_count() or 1
        return cls(cfg, idle_share=min(max(member_cpus / cpus, 0.0), 1.0))

    def feed(self, name: str, rungs: Sequence[Rung], fps: float) -> "FeedEnergy":
        with self._lock:
            self._weights[name] = self.costs.weights(rungs, fps)
        return FeedEnergy(self, name)

    def set_rungs(self, feed: str, rungs: Sequence[Rung], fps: float, fast: frozenset[str] = frozenset()) -> None:
        """The feed's ladder changed (at a segment boundary): its CPU time goes to these rungs
        (those in `fast` on the faster preset weigh what that preset keeps of them)."""
        weights = self.costs.weights(rungs, fps)
        by_name = {r.name: r for r in rungs}
        with self._lock:
            self._weights[feed] = {n: w * (self.costs.faster(by_name[n]) if n in fast else 1.0) for n, w in weights.items()}

    def drop_feed(self, feed: str) -> None:
        with self._lock:
            self._weights.pop(feed, None)
            self._pushed.pop(feed, None)
            for key in [k for k in self._open if k[0] == feed]:
                del self._open[key]

    # -- from the transcoder's threads ----------------------------------------------------------
    def _pushed_cpu(self, feed: str, thread_cpu_s: float) -> None:
        with self._lock:
            self._pushed[feed] = self._pushed.get(feed, 0.0) + max(thread_cpu_s, 0.0)

    def _stamp(self, feed: str, items: list[T]) -> list[T]:
        if not any(isinstance(x, Segment) for x in items):
            return items
        with self._lock:
            if self._clock() - self._last_close >= self._min_interval:
                self._close()
            now = self._clock()
            # Several segments of one rung in one call (a flush, a catch-up) share its joules
            # by media duration.
            media: dict[str, float] = {}
            for x in items:
                if isinstance(x, Segment):
                    media[x.rendition] = media.get(x.rendition, 0.0) + max(x.duration, 0.0)
            taken = {r: self._open.setdefault((feed, r), _Open()).take() for r in media}
            out: list[T] = []
            for x in items:
                if isinstance(x, Segment) and (whole := taken[x.rendition]) is not None:
                    share = max(x.duration, 0.0) / media[x.rendition] if media[x.rendition] > 0 else 1.0
                    energy = SegmentEnergy(whole.joules * share, whole.source, whole.error_joules * share)
                    self._segments.append((now, feed, x.rendition, x.duration, energy.joules, energy.error_joules))
                    total = self._media_total.setdefault((feed, x.rendition), [0.0, 0.0])
                    total[0] += max(x.duration, 0.0)
                    total[1] += 1
                    x = replace(x, energy=energy)  # type: ignore[assignment]
                out.append(x)
            self._forget(now)
            return out

    def close_interval(self) -> None:
        """Close the interval now (the transcoder does so at segment boundaries; a test or a
        report may too)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        now = self._clock()
        try:
            interval = self.meter.sample()
        except OSError:  # a counter that stopped being readable: this interval is lost
            self.errors += 1
            self._last_close, self._cpu_mark, self._pushed = now, self._process_cpu(), {}
            return
        cpu_now = self._process_cpu()
        process_cpu, self._cpu_mark, self._last_close = max(cpu_now - self._cpu_mark, 0.0), cpu_now, now
        pushed, self._pushed = self._pushed, {}
        feeds = {f: w for f, w in pushed.items() if f in self._weights}
        total = sum(feeds.values())
        items: list[WorkItem] = []
        keys: list[tuple[str, str]] = []
        if total > 0:
            for feed, w in feeds.items():
                for rung, cpu in split_cpu(process_cpu * w / total, self._weights[feed]).items():
                    items.append(WorkItem(f"{feed}/{rung}", cpu, interval.wall_s))
                    keys.append((feed, rung))
        attributed: dict[tuple[str, str], tuple[float, float]] = {}
        for key, a in zip(keys, attribute(interval, items, self.idle_share) if items else []):
            attributed[key] = (a.joules, a.error_joules)
            self._open.setdefault(key, _Open()).add(a.joules, a.error_joules, a.energy_source)
            tkey = (*key, a.energy_source)
            self._joules_total[tkey] = self._joules_total.get(tkey, 0.0) + a.joules
        self._process_total[interval.source] = (self._process_total.get(interval.source, 0.0)
                                                + _process_joules(interval, process_cpu, self.idle_share))
        self._intervals.append(_Interval(now, interval, process_cpu, attributed))
        if interval.source == "rapl":
            self._rapl_intervals += 1
            if self._rapl_intervals % CALIBRATE_EVERY == 0:
                try:
                    self.meter.calibrate()
                except EnergyError:
                    pass  # too little spread in load so far: the seed stays
        self._forget(now)

    def _forget(self, now: float) -> None:
        while self._intervals and self._intervals[0].end < now - self._window:
            self._intervals.popleft()
        while self._segments and self._segments[0][0] < now - self._window:
            self._segments.popleft()

    # -- the report ------------------------------------------------------------------------------
    def report(self) -> dict:
        """Recent figures (the last `window_s`): per feed and rung watts (attributed joules over
        wall time), joules per media second (of the segments stamped) and their errors; the
        host's and this process's power; the source and relative error of the joules."""
        with self._lock:
            # A member without feeds (a standby) cuts no segments: asking closes its intervals,
            # so that its idle share and its own overhead are counted too.
            if self._clock() - self._last_close >= self._min_interval:
                self._close()
            intervals, segments = list(self._intervals), list(self._segments)
            model = self.meter.model
            out: dict = {
                "source": self.meter.source, "idle_share": self.idle_share, "window_s": self._window,
                "model": {"idle_w": model.idle_w, "k_w": model.k_w, "calibrated": model.calibrated},
                "errors": self.errors, "feeds": {},
                "instance": self.instance,
                "totals": {
                    "joules": [(f, r, src, j) for (f, r, src), j in sorted(self._joules_total.items())],
                    "media": [(f, r, m, int(n)) for (f, r), (m, n) in sorted(self._media_total.items())],
                    "process_joules": dict(self._process_total),
                },
            }
        wall = sum(i.energy.wall_s for i in intervals)
        out["wall_s"] = wall
        if not intervals or wall <= 0:
            out.update(host_w=None, process_w=None, attributed_w=0.0,
                       rel_error=RAPL_REL_ERROR if self.meter.source == "rapl" else self.meter.model.rel_error)
            return out
        last = intervals[-1].energy
        host_j = sum(i.energy.joules for i in intervals)
        # this process: its share of active energy by CPU time plus its idle share
        process_j = sum(_process_joules(i.energy, i.process_cpu_s, self.idle_share) for i in intervals)
        per: dict[tuple[str, str], _Tally] = {}
        for i in intervals:
            for key, (j, e) in i.attributed.items():
                t = per.setdefault(key, _Tally())
                t.joules += j
                t.error += e
        for _, feed, rung, media_s, j, _e in segments:
            t = per.setdefault((feed, rung), _Tally())
            t.media_s += media_s
            t.segment_joules += j
            t.segments += 1
        for (feed, rung), t in sorted(per.items()):
            out["feeds"].setdefault(feed, {})[rung] = {
                "watts": t.joules / wall, "error_w": t.error / wall,
                "joules_per_media_s": t.segment_joules / t.media_s if t.media_s > 0 else None,
                "segments": t.segments,
            }
        attributed = sum(t.joules for t in per.values())
        out.update(
            host_w=host_j / wall, process_w=process_j / wall, attributed_w=attributed / wall,
            rel_error=last.rel_error, utilisation=sum(i.energy.host_cpu_s for i in intervals) / (wall * last.cpus),
            process_cpu_per_s=sum(i.process_cpu_s for i in intervals) / wall,
        )
        return out


def _process_joules(interval: IntervalEnergy, process_cpu_s: float, idle_share: float) -> float:
    """This process's part of an interval: its share of active energy by CPU time, plus its
    idle share."""
    share = min(process_cpu_s / max(interval.host_cpu_s, process_cpu_s, 1e-12), 1.0)
    return interval.active_joules * share + interval.idle_joules * idle_share


class FeedEnergy:
    """The hook one feed's `LiveTranscoder` calls: the CPU time of each push, and its output to
    stamp (segments get `energy`)."""

    def __init__(self, member: MemberEnergy, feed: str) -> None:
        self.member = member
        self.feed = feed

    def pushed(self, thread_cpu_s: float) -> None:
        self.member._pushed_cpu(self.feed, thread_cpu_s)

    def stamp(self, items: list[T]) -> list[T]:
        return self.member._stamp(self.feed, items)

    def set_rungs(self, rungs: Sequence[Rung], fps: float, fast: frozenset[str] = frozenset()) -> None:
        self.member.set_rungs(self.feed, rungs, fps, fast)
