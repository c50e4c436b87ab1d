"""The live pipeline following the site's plan: the step in force at each moment.

`LadderGovernor` keeps the site clock (real time, or a compressed day as `orbitcast energy
simulate` runs it), tracks the battery from the PV of each hour and the load of the step that
ran, and at the start of every site hour plans the next 24 hours from the battery's charge (a
receding horizon, as `run_day` does). `step()` is the step of the hour now; the transcoders
make its rungs at its frame rate from their next segment boundary.

The load it tracks is the plan's model of each step (the config's measured costs through the
power model), scaled, once the pipeline reports energy (`energy.enabled`), to what it measured:
at every site hour the watts the pipeline drew on the step that ran (its joules per media second,
feeds and rungs summed) against the model's figure for that step set the level of every step,
the model keeps their proportions (as `orbitcast energy simulate --catalog` does). The battery
here is the plan's picture of the site, not a reading of a real battery, which the site's own
controller would give.

Nothing here sleeps or starts a thread: the actor that holds it asks `step()` when it likes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from zoneinfo import ZoneInfo

from ..config import OrbitcastConfig
from .errors import EnergyError
from .planner import LadderStep, Plan, plan_day, steps_for_config
from .simulate import DAY_S, SiteClock
from .site import Battery, hour_starts, hourly_pv_w

HOUR = dt.timedelta(hours=1)


class LadderGovernor:
    def __init__(self, config: OrbitcastConfig, wall: Callable[[], float] = time.time,
                 pv: Callable[[dt.date], list[float]] | None = None,
                 measure: Callable[[], float | None] | None = None) -> None:
        energy = config.energy
        if energy.site is None:
            raise EnergyError("following the plan needs energy.site (docs/energy.md)")
        self.site = site = energy.site
        follow = energy.follow_plan
        zone = ZoneInfo(site.timezone)
        self.simulated = follow.simulate_date is not None
        if follow.simulate_date is not None:
            day = follow.simulate_date
            start = hour_starts(site, day)[follow.start_hour]
            speed = DAY_S / (follow.minutes * 60.0)
        else:
            start = dt.datetime.fromtimestamp(wall(), zone)
            day, speed = start.date(), 1.0
        self.clock = SiteClock(start, speed, wall)
        self._wall = wall
        self.model_steps = self.steps = steps_for_config(config)
        # the pipeline's measured watts (None: nothing measured yet), and the model's scale
        self.measure = measure
        self.scale: float | None = None
        self._pv = pv or (lambda d: hourly_pv_w(site, d))
        self.battery = Battery.of(site)
        self._day = day
        self._table = self._hours(day)
        self._h = self._hour_of(start)
        self._at = start  # site time up to which the battery has been run
        # end_soc "start": the first plan of a day leaves the charge it started with, each later
        # one what that plan expected at its hour, a day on (as `run_day` does)
        self._first: tuple[int, Plan] | None = None
        self.plan: Plan = self._replan()
        self.changes: deque[dict] = deque(maxlen=100)
        self._note()

    def _hours(self, day: dt.date) -> tuple[list[dt.datetime], list[float]]:
        """Hour starts and PV watts of `day` and the day after (the last hour's horizon)."""
        after = day + dt.timedelta(days=1)
        return hour_starts(self.site, day) + hour_starts(self.site, after), self._pv(day) + self._pv(after)

    def _hour_of(self, t: dt.datetime) -> int:
        starts = self._table[0]
        return max(h for h in range(24) if starts[h] <= t) if t >= starts[0] else 0

    def _rescale(self) -> None:
        """Every step's load at the level the pipeline measured on the step that ran."""
        measured = self.measure() if self.measure is not None else None
        base = self.site.base_load_w
        modelled = self.model_steps[self.current.index].load_w - base
        if measured is None or not measured > 0 or modelled <= 0:
            return
        self.scale = measured / modelled
        self.steps = [replace(s, load_w=(s.load_w - base) * self.scale + base) for s in self.model_steps]

    def _replan(self) -> Plan:
        starts, pv = self._table
        h = self._h
        end = self.site.end_soc
        if end == "start":
            first = self._first
            k = h - first[0] if first is not None else -1
            target: float | None = first[1].hours[k].soc_start if first is not None and 0 <= k < 24 else self.battery.soc
        else:
            target = float(end) if isinstance(end, (int, float)) else None
        plan = plan_day(pv[h:h + 24], self.steps, Battery(self.battery.capacity_wh, self.battery.soc,
                        self.battery.charge_efficiency, self.battery.discharge_efficiency),
                        self.site.night_reserve, starts[h:h + 24], end_soc=target)
        if self._first is None:
            self._first = (h, plan)
        return plan

    @property
    def current(self) -> LadderStep:
        return self.plan.hours[0].step

    def step(self) -> LadderStep:
        """The step in force now: the site clock is run up to now first (battery, re-plans)."""
        now = self.clock.now()
        while True:
            starts, pv = self._table
            end = starts[self._h] + HOUR
            upto = min(now, end)
            if upto > self._at:
                self.battery.step(pv[self._h], self.current.load_w, (upto - self._at).total_seconds() / 3600.0)
                self._at = upto
            if now < end:
                return self.current
            before = self.current
            self._h += 1
            if self._h >= 24:  # the next local day: its own hours (23 or 25 across a DST change)
                self._day += dt.timedelta(days=1)
                self._table = self._hours(self._day)
                self._h, self._first = self._hour_of(self._at), None
            self._rescale()
            self.plan = self._replan()
            if self.current.index != before.index:
                self._note()

    def _note(self) -> None:
        s = self.current
        self.changes.append({"site_time": self._at.isoformat(timespec="minutes"), "at": self._wall(), "step": s.index,
                             "label": s.label, "rungs": list(s.rungs), "fps": s.fps})

    def status(self) -> dict:
        """What /api/energy shows under `ladder`: the step in force, the battery, the plan."""
        s = self.step()
        return {
            "following": True, "simulated": self.simulated, "speed": self.clock.speed,
            "site_time": self.clock.now().isoformat(timespec="seconds"),
            "step": {"index": s.index, "action": s.action, "label": s.label, "rungs": list(s.rungs),
                     "fps": s.fps, "fast_rungs": list(s.fast_rungs), "faster_preset": s.faster_preset,
                     "load_w": round(s.load_w, 3)},
            # applied live: rungs, frame rate, the faster preset (where it keeps the stream
            # headers), the pool cap; refusing new feeds has nothing to refuse (docs/energy.md)
            "applied": ["rungs", "fps", "faster_preset", "members"],
            "soc": round(self.battery.soc, 4), "reserve": self.site.night_reserve,
            "load_source": "measured" if self.scale is not None else "model",
            "scale": None if self.scale is None else round(self.scale, 3),
            "plan": [{"start": h.start.isoformat(timespec="minutes"), "pv_w": round(h.pv_w, 2), "step": h.step.index,
                      "soc_end": round(h.soc_end, 4)} for h in self.plan.hours],
            "changes": list(self.changes),
        }


def measured_pipeline_w(reports: list[dict]) -> float | None:
    """The watts the pipeline draws, from the pool members' energy reports: joules per media
    second of every feed's rungs summed (feeds run in real time: a media second is a second).
    None when no member has stamped a segment yet."""
    figures = [r["joules_per_media_s"] for report in reports for rungs in report.get("feeds", {}).values()
               for r in rungs.values() if r.get("joules_per_media_s") is not None]
    return sum(figures) if figures else None
