"""A day in minutes: the planner run against a compressed site day.

The site clock runs `speed` times faster than the wall clock (24 h in `minutes` of wall time).
At the start of every site hour the planner plans the next 24 hours from the battery's
tracked state of charge (a receding horizon, as the plan is meant to run: docs/energy.md),
the hour runs on the first hour's ladder step, and the battery takes that hour's PV and load.
PV is pvlib's (site.py) for the day and, for the horizon past midnight, the next day; the load
of a step is the config's model (`ladder_steps`: measured CPU seconds per media second per
rung through the power model), or that model scaled to the joules per media second a catalog
measured.

Nothing here sleeps by itself: `run_day` takes the clock and the sleep to use, so a test runs
a day in no time and a user watches it in minutes.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..config import OrbitcastConfig
from .errors import EnergyError
from .planner import LadderStep, Plan, PlanHour, plan_day, steps_for_config
from .site import Battery, hour_starts, hourly_pv_w

DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class SimulatedHour:
    hour: PlanHour   # what ran: PV, the step, the battery before and after
    plan: Plan       # the plan made at the start of the hour (24 h ahead)

    @property
    def rungs(self) -> tuple[str, ...]:
        return self.hour.step.rungs


@dataclass(frozen=True)
class Simulation:
    hours: tuple[SimulatedHour, ...]
    steps: tuple[LadderStep, ...]
    reserve: float
    capacity_wh: float
    load_source: str  # "model" or "catalog"

    def as_plan(self) -> Plan:
        """The day as it ran, in the shape plot.py draws."""
        return Plan(tuple(h.hour for h in self.hours), self.steps, self.reserve, self.capacity_wh)

    @property
    def min_soc(self) -> float:
        return min(h.hour.soc_end for h in self.hours)


class SiteClock:
    """Site time from the wall clock: `start` when made, then `speed` times faster."""

    def __init__(self, start: dt.datetime, speed: float, wall: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise EnergyError(f"the site clock's speed must be > 0, got {speed}")
        self.start, self.speed, self._wall = start, speed, wall
        self._wall0 = wall()

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(self._wall() - self._wall0) * self.speed)

    def wall_until(self, site_time: dt.datetime) -> float:
        """Wall seconds until the site clock reaches `site_time` (0 when it has)."""
        return max((site_time - self.now()).total_seconds() / self.speed, 0.0)


def run_day(
    pv_w: Sequence[float],
    starts: Sequence[dt.datetime],
    steps: Sequence[LadderStep],
    battery: Battery,
    reserve: float,
    *,
    end_soc: float | str | None = None,
    minutes: float = 2.0,
    wall: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_hour: Callable[[SimulatedHour], None] | None = None,
    load_source: str = "model",
) -> Simulation:
    """Run the first 24 of `pv_w`'s hours (it holds 48: the horizon of the last hour reaches
    into the next day), re-planning at each hour from the tracked battery.

    `end_soc`, as the site's: a number (every plan leaves at least that charge 24 h on), None
    (the reserve only), or "start": the first plan (at midnight) leaves the charge it started
    with, and the plan made at each later hour leaves, 24 h on, the charge the first plan
    expected at that hour (what a site that repeats its day has again a day later). `minutes`:
    wall minutes the 24 site hours take; 0 runs as fast as it can."""
    if len(pv_w) != len(starts) or len(pv_w) < 48:
        raise EnergyError(f"a simulated day needs 48 hours of PV and hour starts, got {len(pv_w)} and {len(starts)}")
    if not math.isfinite(minutes) or minutes < 0:
        raise EnergyError(f"minutes must be 0 or more, got {minutes}")
    clock = SiteClock(starts[0], DAY_S / (minutes * 60.0), wall) if minutes > 0 else None
    out: list[SimulatedHour] = []
    first: Plan | None = None
    for h in range(24):
        soc = battery.soc
        if end_soc == "start":
            target: float | None = soc if first is None else first.hours[h].soc_start
        else:
            target = float(end_soc) if isinstance(end_soc, (int, float)) else None
        plan = plan_day(pv_w[h:h + 24], steps, Battery(battery.capacity_wh, soc, battery.charge_efficiency,
                        battery.discharge_efficiency), reserve, starts[h:h + 24], end_soc=target)
        first = first or plan
        step = plan.hours[0].step
        s = battery.step(pv_w[h], step.load_w)
        ran = PlanHour(starts[h], pv_w[h], step, soc, battery.soc, s.charged_wh, s.discharged_wh, s.curtailed_wh,
                       s.unserved_wh, s.solar_direct_wh, battery.soc < reserve - 1e-9 or s.unserved_wh > 0)
        out.append(SimulatedHour(ran, plan))
        if clock is not None:
            # the hour is told when the site clock has run through it
            if (wait := clock.wall_until(starts[h] + dt.timedelta(hours=1))) > 0:
                sleep(wait)
        if on_hour is not None:
            on_hour(out[-1])
    return Simulation(tuple(out), tuple(steps), reserve, battery.capacity_wh, load_source)


def measured_joules_per_media_s(rows: Sequence[Mapping]) -> dict[str, float]:
    """Per rendition, joules over media seconds of the catalog rows that carry joules, averaged
    over feeds (a feed's media second is one of each of its rungs)."""
    per: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        joules, duration = r.get("joules"), r.get("duration")
        if joules is None or duration is None or not duration > 0 or not math.isfinite(joules):
            continue
        acc = per.setdefault((str(r["feed"]), str(r["rendition"])), [0.0, 0.0])
        acc[0] += float(joules)
        acc[1] += float(duration)
    by_rung: dict[str, list[float]] = {}
    for (_feed, rung), (joules, seconds) in per.items():
        by_rung.setdefault(rung, []).append(joules / seconds)
    return {rung: sum(v) / len(v) for rung, v in by_rung.items()}


def scaled_to_measured(steps: Sequence[LadderStep], measured: Mapping[str, float], feeds: int,
                       base_load_w: float) -> list[LadderStep]:
    """The steps' loads scaled so that the full ladder's pipeline load (the site's base load
    aside) is what the catalog measured: feeds x the sum of its rungs' joules per media second.
    The rungs' relative costs and what each action saves stay the model's: catalog rows carry
    the members' idle power shared among the rungs, which dropping a rung does not remove."""
    full = steps[0]
    missing = [r for r in full.rungs if r not in measured]
    if missing:
        raise EnergyError(f"the catalog has no joules for rung(s) {', '.join(missing)} of the ladder")
    pipeline_w = feeds * sum(measured[r] for r in full.rungs)
    modelled = full.load_w - base_load_w
    if modelled <= 0:
        raise EnergyError("the model's full ladder draws nothing: nothing to scale")
    k = pipeline_w / modelled
    return [replace(s, load_w=(s.load_w - base_load_w) * k + base_load_w) for s in steps]


def simulate_for_config(
    config: OrbitcastConfig,
    day: dt.date,
    *,
    minutes: float = 2.0,
    soc: float | None = None,
    catalog_rows: Sequence[Mapping] | None = None,
    wall: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_hour: Callable[[SimulatedHour], None] | None = None,
) -> Simulation:
    """A compressed day of `config`'s site from local midnight of `day` (pvlib for the PV)."""
    energy = config.energy
    if energy.site is None:
        raise EnergyError("no energy.site in the config: the simulation needs a solar site (docs/energy.md)")
    site = energy.site
    start = site.initial_soc if soc is None else soc
    if not site.night_reserve <= start <= 1:
        raise EnergyError(f"state of charge {start} must be within night_reserve ({site.night_reserve}) .. 1")
    feeds = len(config.feeds)
    steps = steps_for_config(config)
    source = "model"
    if catalog_rows is not None:
        measured = measured_joules_per_media_s(catalog_rows)
        if not measured:
            raise EnergyError("the catalog has no rows with joules (energy.enabled was off, or nothing ran)")
        steps = scaled_to_measured(steps, measured, feeds, site.base_load_w)
        source = "catalog"
    after = day + dt.timedelta(days=1)
    # On a daylight-saving day the next day's hours join a day of 23 or 25: the horizon past
    # midnight is off by that hour.
    pv = hourly_pv_w(site, day) + hourly_pv_w(site, after)
    starts = hour_starts(site, day) + hour_starts(site, after)
    return run_day(pv, starts, steps, Battery.of(site, start), site.night_reserve, end_soc=site.end_soc,
                   minutes=minutes, wall=wall, sleep=sleep, on_hour=on_hour, load_source=source)


def hour_line(h: SimulatedHour) -> str:
    """One site hour as it has passed: its start, PV, load, state of charge, the step and rungs on."""
    x = h.hour
    rungs = " ".join(f"{r}*" if r in x.step.fast_rungs else r for r in x.step.rungs)
    flag = "  BELOW RESERVE" if x.below_reserve else ""
    flag += f"  unserved {x.unserved_wh:.1f} Wh" if x.unserved_wh > 0 else ""
    return (f"{x.start:%H:%M} {x.pv_w:7.1f} {x.load_w:7.2f}  {x.soc_start:6.1%} -> {x.soc_end:6.1%}"
            f"  {x.step.index:>4}  {x.step.label[:26]:26s} {rungs}{flag}")


HOUR_HEADER = "site   PV W  load W  SoC start -> end  step  action                     rungs on (* faster preset)"


def summary_line(sim: Simulation) -> str:
    hours = [h.hour for h in sim.hours]
    return (f"PV {sum(h.pv_w for h in hours):.0f} Wh, load {sum(h.load_w for h in hours):.0f} Wh "
            f"({sim.load_source}), curtailed {sum(h.curtailed_wh for h in hours):.0f} Wh; battery "
            f"{sim.capacity_wh:.0f} Wh from {hours[0].soc_start:.1%} to {hours[-1].soc_end:.1%}, lowest "
            f"{sim.min_soc:.1%}, reserve {sim.reserve:.0%}; steps {min(h.step.index for h in hours)}.."
            f"{max(h.step.index for h in hours)}")
