"""The live pipeline's governor (orbitcast/energy/governor.py): the step in force as the site
clock runs. Its day must be the simulation's day (the same receding-horizon planner from the
same battery), hour by hour, with a wall clock the test moves; the winter day is pvlib's."""

from __future__ import annotations

import datetime as dt

import pytest

from orbitcast.config import ConfigError, parse_config
from orbitcast.energy.governor import LadderGovernor
from orbitcast.energy.simulate import simulate_for_config
from tests.unit.test_energy_simulate import LERWICK

DAY = dt.date(2024, 12, 21)
SITE = LERWICK  # end_soc "start": a site that lasts day after day


class Wall:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


def config(**follow):
    return parse_config({"energy": {"enabled": True, "power": {"cpus": 2}, "site": SITE,
                                    "follow_plan": {"enabled": True, "simulate_date": DAY.isoformat(), **follow}}})


def test_a_simulated_day_follows_the_simulation_hour_by_hour() -> None:
    wall = Wall()
    cfg = config(minutes=24.0)  # one site hour per wall minute
    gov = LadderGovernor(cfg, wall)
    sim = simulate_for_config(cfg, DAY, minutes=0)
    seen = []
    for h in range(24):
        wall.t = 5000.0 + h * 60 + 30  # the middle of site hour h
        seen.append(gov.step().index)
    assert seen == [x.hour.step.index for x in sim.hours]
    last = sim.hours[23].hour  # half of it has run: a night hour drains at a steady rate
    assert gov.battery.soc == pytest.approx((last.soc_start + last.soc_end) / 2, abs=1e-6)
    # the winter night drops rungs the sunny hours take back: a rung dropped and restored
    rungs = [set(x.hour.step.rungs) for x in sim.hours]
    assert any(a - b for a, b in zip(rungs, rungs[1:])) and any(b - a for a, b in zip(rungs, rungs[1:]))
    assert all("360p" in r for r in rungs), "the bottom rung stays"
    labels = [c["label"] for c in gov.changes]
    assert len(labels) == 1 + sum(a != b for a, b in zip(seen, seen[1:]))


def test_the_day_goes_on_past_midnight() -> None:
    wall = Wall()
    gov = LadderGovernor(config(minutes=1.0), wall)
    wall.t += 60 * 1.5  # a day and a half
    gov.step()
    assert gov.clock.now().date() == DAY + dt.timedelta(days=1)
    assert gov.plan.hours[0].start.hour == 12
    assert gov.site.night_reserve - 1e-9 <= gov.battery.soc <= 1


def test_a_simulated_day_can_start_at_any_hour() -> None:
    wall = Wall()
    gov = LadderGovernor(config(start_hour=9), wall)
    assert gov.clock.now().hour == 9 and gov.plan.hours[0].start.hour == 9
    status = gov.status()
    assert status["simulated"] and status["step"]["rungs"] and "360p" in status["step"]["rungs"]
    assert len(status["plan"]) == 24


def test_following_needs_a_site() -> None:
    with pytest.raises(ConfigError, match="follow_plan needs energy.site"):
        parse_config({"energy": {"follow_plan": {"enabled": True}}})


def test_the_pipelines_measured_watts_set_the_level_of_the_plans_loads() -> None:
    """Measured at 1.5x the model's figure for the step that ran: every step's load is scaled so
    (the model keeps their proportions), and the day is planned on those loads: more degraded."""
    wall, model_wall = Wall(), Wall()
    cfg = config(minutes=24.0)
    base = LadderGovernor(cfg, model_wall)
    scaled: LadderGovernor

    def measure() -> float:
        return 1.5 * (scaled.model_steps[scaled.current.index].load_w - scaled.site.base_load_w)

    scaled = LadderGovernor(cfg, wall, measure=measure)
    steps_model, steps_scaled = [], []
    for h in range(24):
        wall.t = model_wall.t = 5000.0 + h * 60 + 30
        steps_model.append(base.step().index)
        steps_scaled.append(scaled.step().index)
    assert scaled.status()["load_source"] == "measured" and scaled.status()["scale"] == pytest.approx(1.5)
    assert base.status()["load_source"] == "model" and base.scale is None
    full, model_full = scaled.steps[0].load_w, base.model_steps[0].load_w
    assert full == pytest.approx(model_full * 1.5)  # the site's base load is 0 here
    assert all(s >= m for s, m in zip(steps_scaled, steps_model)) and steps_scaled != steps_model
    assert scaled.battery.soc >= scaled.site.night_reserve - 1e-9


def test_measured_watts_from_the_members_reports() -> None:
    from orbitcast.energy.governor import measured_pipeline_w

    reports = [{"feeds": {"iss": {"720p": {"joules_per_media_s": 2.0}, "360p": {"joules_per_media_s": 1.0}}}},
               {"feeds": {"sun": {"360p": {"joules_per_media_s": 1.5}, "180p": {"joules_per_media_s": None}}}},
               {"feeds": {}}]
    assert measured_pipeline_w(reports) == pytest.approx(4.5)
    assert measured_pipeline_w([{"feeds": {}}]) is None and measured_pipeline_w([]) is None
