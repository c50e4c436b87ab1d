"""The day-ahead budget: per hour, how far the ladder is degraded so the battery never falls
below its reserve.

Degradation steps, each adding one action to the one before, in the order of joules saved
per quality lost (docs/energy.md has the measured savings):

1. a faster x264 preset on the low rungs (every rung but the top: few viewers see the loss),
2. drop a middle rung (one step each, highest bitrate first: the top rung still serves them),
3. drop the top rung,
4. lower the frame rate,
5. cap the transcoder pool at one member per feed (no standbys),
6. refuse new feeds.

The bottom rung of every live feed is never dropped, so the plan has a floor load: a site that
cannot carry even that is reported (`below_reserve`, `unserved_wh`), never solved by going dark.

Planning: every hour starts on the full ladder; the day is simulated on the battery; at the
first hour that ends below the reserve (the last hour: below `end_soc` too, where one is set), one hour before it is degraded one step further: of
the hours whose saving still reaches that hour (after the battery was last full), the one
degraded least so far, a battery-powered hour before a sunlit one, the latest first. Repeat
until no hour ends below the reserve, or the hours that could help are all at the last step.
Re-planning every hour from the measured state of charge makes this a receding horizon.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import LadderConfig, OrbitcastConfig, Rung
from .costs import LadderCosts
from .errors import EnergyError
from .model import PowerModel
from .site import Battery, hour_starts, hourly_pv_w

ACTIONS = ("full", "faster_preset", "drop_middle", "drop_top", "lower_fps", "cap_members", "refuse_new_feeds")


@dataclass(frozen=True)
class LadderStep:
    """One state of the ladder: what the pipeline runs at this step, and what the site draws."""

    index: int
    action: str                   # one of ACTIONS: the action this step adds
    label: str                    # as a person reads it: "drop 480p"
    rungs: tuple[str, ...]        # kept, in the ladder's order; the bottom rung always
    fast_rungs: tuple[str, ...]   # of those, the ones on the faster preset
    faster_preset: str
    fps: int | None               # None: the ladder's own (the source's)
    members: int | None           # transcoder pool cap; None: the configured size
    accept_new_feeds: bool
    cpu: float                    # CPU seconds per second the pipeline uses at this step
    load_w: float                 # the site's load: host idle + active + the site's base load

    def ladder(self, base: LadderConfig) -> LadderConfig:
        """The ladder config of this step (the faster preset of `fast_rungs` is not in it:
        LadderConfig has one preset for every rung)."""
        return base.model_copy(update={
            "rungs": tuple(r for r in base.rungs if r.name in self.rungs),
            "fps": self.fps if self.fps is not None else base.fps,
        })


def _by_bitrate(rungs: Sequence[Rung]) -> list[Rung]:
    return sorted(rungs, key=lambda r: -r.video_bitrate)


def ladder_steps(
    ladder: LadderConfig,
    costs: LadderCosts,
    model: PowerModel,
    *,
    feeds: int,
    members: int,
    cpus: int,
    base_load_w: float = 0.0,
) -> list[LadderStep]:
    """The degradation steps of this ladder, with the site load at each."""
    if feeds < 1 or members < 1 or cpus < 1:
        raise EnergyError(f"feeds, members and cpus must be >= 1, got {feeds}, {members}, {cpus}")
    order = _by_bitrate(ladder.rungs)
    top, bottom, middles = order[0], order[-1], order[1:-1]
    fps = float(ladder.fps or 30)

    def make(index: int, action: str, label: str, kept: set[str], fast: set[str], low_fps: bool,
             cap: int | None, accept: bool) -> LadderStep:
        per_feed = costs.feed_cpu + sum(
            costs.rung(r, fps) * (costs.faster(r) if r.name in fast else 1.0) * (costs.reduced_fps_factor if low_fps else 1.0)
            for r in ladder.rungs if r.name in kept)
        standby = max((cap if cap is not None else members) - feeds, 0)
        cpu = feeds * per_feed + standby * costs.member_cpu
        load = model.watts(cpu / cpus) + base_load_w
        return LadderStep(index, action, label, tuple(r.name for r in ladder.rungs if r.name in kept),
                          tuple(r.name for r in ladder.rungs if r.name in fast and r.name in kept),
                          costs.faster_preset, costs.reduced_fps if low_fps else None, cap, accept, cpu, load)

    kept = {r.name for r in ladder.rungs}
    fast: set[str] = set()
    low_fps, cap, accept = False, None, True
    steps = [make(0, "full", "full ladder", kept, fast, low_fps, cap, accept)]

    def add(action: str, label: str) -> None:
        steps.append(make(len(steps), action, label, set(kept), set(fast), low_fps, cap, accept))

    if len(order) > 1 and costs.faster_preset != ladder.preset:
        fast = {r.name for r in order[1:]}
        add("faster_preset", f"{costs.faster_preset} on {', '.join(r.name for r in order[1:])}")
    for r in middles:
        kept.discard(r.name)
        add("drop_middle", f"drop {r.name}")
    if len(order) > 1:
        kept.discard(top.name)
        add("drop_top", f"drop {top.name}")
    assert bottom.name in kept
    if costs.reduced_fps < fps:
        low_fps = True
        add("lower_fps", f"{costs.reduced_fps} fps")
    if members > feeds:
        cap = feeds
        add("cap_members", f"{feeds} transcoder member{'s' if feeds > 1 else ''}")
    accept = False
    add("refuse_new_feeds", "refuse new feeds")
    return steps


@dataclass(frozen=True)
class PlanHour:
    start: dt.datetime  # local time
    pv_w: float
    step: LadderStep
    soc_start: float    # 0..1
    soc_end: float
    charged_wh: float
    discharged_wh: float
    curtailed_wh: float
    unserved_wh: float
    solar_direct_wh: float
    below_reserve: bool

    @property
    def load_w(self) -> float:
        return self.step.load_w


@dataclass(frozen=True)
class Plan:
    hours: tuple[PlanHour, ...]
    steps: tuple[LadderStep, ...]
    reserve: float            # 0..1
    capacity_wh: float
    end_soc: float | None = None

    @property
    def feasible(self) -> bool:
        return not any(h.below_reserve for h in self.hours)

    @property
    def min_soc(self) -> float:
        return min(h.soc_end for h in self.hours)


def _simulate(pv_w: Sequence[float], steps: Sequence[LadderStep], levels: Sequence[int], battery: Battery,
              starts: Sequence[dt.datetime], reserve: float, end_soc: float) -> list[PlanHour]:
    out = []
    for h, (start, pv, level) in enumerate(zip(starts, pv_w, levels, strict=True)):
        soc0 = battery.soc
        s = battery.step(pv, steps[level].load_w)
        floor = max(reserve, end_soc) if h == len(pv_w) - 1 else reserve
        # A hair of tolerance: a plan exactly at the reserve is at it, not below.
        below = battery.soc < floor - 1e-9 or s.unserved_wh > 0
        out.append(PlanHour(start, pv, steps[level], soc0, battery.soc, s.charged_wh, s.discharged_wh,
                            s.curtailed_wh, s.unserved_wh, s.solar_direct_wh, below))
    return out


def plan_day(
    pv_w: Sequence[float],
    steps: Sequence[LadderStep],
    battery: Battery,
    reserve: float,
    starts: Sequence[dt.datetime] | None = None,
    end_soc: float | None = None,
) -> Plan:
    """Plan the hours of `pv_w` (mean PV watts per hour) from the battery's present state.

    `end_soc`: the charge the last hour must leave (e.g. the charge it started with, for a
    site that must last day after day); otherwise only the reserve counts."""
    n = len(pv_w)
    if not steps:
        raise EnergyError("no ladder steps to plan with")
    if not 0 <= reserve < 1:
        raise EnergyError(f"reserve must be within 0..1, got {reserve}")
    if end_soc is not None and not 0 <= end_soc <= 1:
        raise EnergyError(f"end_soc must be within 0..1, got {end_soc}")
    if starts is None:
        t0 = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
        starts = [t0 + dt.timedelta(hours=h) for h in range(n)]
    capacity, soc0 = battery.capacity_wh, battery.soc
    last = len(steps) - 1
    levels = [0] * n
    accepted: set[int] = set()  # hours below the reserve that no degradation can lift

    def run() -> list[PlanHour]:
        return _simulate(pv_w, steps, levels,
                         Battery(capacity, soc0, battery.charge_efficiency, battery.discharge_efficiency), starts, reserve,
                         end_soc or 0.0)

    hours = run()
    while True:
        bad = next((h for h, ph in enumerate(hours) if ph.below_reserve and h not in accepted), None)
        if bad is None:
            break
        # Saving before the battery was last full is curtailed at that point: it cannot reach `bad`.
        first = max((h + 1 for h in range(bad) if hours[h].curtailed_wh > 0), default=0)
        candidates = [h for h in range(first, bad + 1) if levels[h] < last]
        if not candidates:
            accepted.add(bad)
            continue
        pick = min(candidates, key=lambda h: (levels[h], pv_w[h] >= steps[levels[h]].load_w, -h))
        levels[pick] += 1
        hours = run()
    return Plan(tuple(hours), tuple(steps), reserve, capacity, end_soc)


def steps_for_config(config: OrbitcastConfig) -> list[LadderStep]:
    """The degradation steps of `config`'s ladder, feeds and pool, loads from its cost figures
    through its power model."""
    energy = config.energy
    base = energy.site.base_load_w if energy.site is not None else 0.0
    return ladder_steps(config.ladder, LadderCosts.from_config(energy.costs), PowerModel.from_config(energy.power),
                        feeds=len(config.feeds), members=max(config.transcoders, len(config.feeds)),
                        cpus=energy.power.cpus or os.cpu_count() or 1, base_load_w=base)


def plan_for_config(config: OrbitcastConfig, day: dt.date, soc: float | None = None) -> Plan:
    """The plan of `config`'s site for a local date, with its ladder, feeds and pool."""
    energy = config.energy
    if energy.site is None:
        raise EnergyError("no energy.site in the config: the plan needs a solar site (docs/energy.md)")
    site = energy.site
    if soc is not None and not site.night_reserve <= soc <= 1:
        raise EnergyError(f"state of charge {soc} must be within night_reserve ({site.night_reserve}) .. 1")
    steps = steps_for_config(config)
    start = site.initial_soc if soc is None else soc
    end = None if site.end_soc is None else (start if site.end_soc == "start" else site.end_soc)
    return plan_day(hourly_pv_w(site, day), steps, Battery(site.battery_wh, start, site.charge_efficiency,
                    site.discharge_efficiency), site.night_reserve, hour_starts(site, day), end_soc=end)

