"""The day-ahead plan: the documented degradation order, the bottom rung always kept, and a
battery that never ends an hour below its reserve when the site can carry the floor load."""

from __future__ import annotations

import datetime as dt

import pytest

from orbitcast.config import LadderConfig, Rung, parse_config
from orbitcast.energy.config import CostsConfig
from orbitcast.energy.costs import LadderCosts
from orbitcast.energy.errors import EnergyError
from orbitcast.energy.model import PowerModel
from orbitcast.energy.planner import ACTIONS, ladder_steps, plan_day, plan_for_config
from orbitcast.energy.site import Battery

DEMO = LadderConfig()
COSTS = LadderCosts.from_config(CostsConfig())
MODEL = PowerModel.from_tdp(15.0, idle_fraction=0.3)


def steps(ladder: LadderConfig = DEMO, feeds: int = 1, members: int = 2):
    return ladder_steps(ladder, COSTS, MODEL, feeds=feeds, members=members, cpus=2)


def test_the_demo_ladder_degrades_in_the_documented_order_and_keeps_its_bottom_rung() -> None:
    s = steps()
    assert [x.action for x in s] == list(ACTIONS)
    assert [x.rungs for x in s[:4]] == [("720p", "480p", "360p"), ("720p", "480p", "360p"), ("720p", "360p"), ("360p",)]
    assert s[1].fast_rungs == ("480p", "360p")
    assert s[4].fps == COSTS.reduced_fps and s[5].members == 1 and not s[6].accept_new_feeds
    assert all("360p" in x.rungs for x in s)
    loads = [x.load_w for x in s]
    assert all(b <= a for a, b in zip(loads, loads[1:])) and loads[-2] < loads[0]
    assert loads[-1] == loads[-2]  # refusing new feeds saves nothing now; it keeps the load from growing


def test_every_middle_rung_goes_before_the_top_and_the_ladder_order_does_not_matter() -> None:
    rungs = (Rung(name="240p", width=426, height=240, video_bitrate=300_000),
             Rung(name="1080p", width=1920, height=1080, video_bitrate=5_000_000),
             Rung(name="480p", width=854, height=480, video_bitrate=1_200_000),
             Rung(name="720p", width=1280, height=720, video_bitrate=2_500_000))
    s = steps(LadderConfig(rungs=rungs), members=1)
    assert [x.label for x in s if x.action in ("drop_middle", "drop_top")] == ["drop 720p", "drop 480p", "drop 1080p"]
    assert s[-1].rungs == ("240p",) and "cap_members" not in [x.action for x in s]  # no standby to cap


def test_a_one_rung_ladder_has_nothing_to_drop() -> None:
    s = steps(LadderConfig(rungs=(Rung(name="360p", width=640, height=360, video_bitrate=600_000),)))
    assert [x.action for x in s] == ["full", "lower_fps", "cap_members", "refuse_new_feeds"]
    assert all(x.rungs == ("360p",) for x in s)


def test_a_ladder_already_on_the_faster_preset_has_no_preset_step() -> None:
    assert "faster_preset" not in [x.action for x in steps(DEMO.model_copy(update={"preset": COSTS.faster_preset}))]


def test_a_step_runs_as_a_ladder_config() -> None:
    s = steps()[4]
    lad = s.ladder(DEMO)
    assert [r.name for r in lad.rungs] == ["360p"] and lad.fps == COSTS.reduced_fps


def night_and_day(pv_noon: float) -> list[float]:
    """A synthetic day: dark until 8, a triangle of sun peaking at noon, dark from 16."""
    return [max(0.0, pv_noon * (1 - abs(h + 0.5 - 12) / 4)) for h in range(24)]


@pytest.mark.parametrize("pv_noon", [12.0, 20.0, 40.0, 80.0])
def test_the_battery_never_ends_an_hour_below_the_reserve(pv_noon: float) -> None:
    plan = plan_day(night_and_day(pv_noon), steps(), Battery(200.0, soc=0.7), reserve=0.25)
    assert plan.feasible
    assert plan.min_soc >= 0.25 - 1e-9 and all(h.soc_end >= 0.25 - 1e-9 for h in plan.hours)
    # and it is no stingier than it must be: with every hour on the full ladder the same day
    # either also held, or it did not and some hour had to give
    full = plan_day(night_and_day(pv_noon), steps()[:1], Battery(200.0, soc=0.7), reserve=0.25)
    assert any(h.step.index > 0 for h in plan.hours) == (not full.feasible)


def test_more_sun_never_means_a_poorer_ladder() -> None:
    worst = [max(h.step.index for h in plan_day(night_and_day(p), steps(), Battery(200.0, 0.7), 0.25).hours)
             for p in (8.0, 12.0, 20.0, 40.0, 80.0)]
    assert worst == sorted(worst, reverse=True) and worst[0] > 0 and worst[-1] == 0


def test_a_night_too_long_for_the_battery_is_reported_and_the_bottom_rung_stays() -> None:
    plan = plan_day([0.0] * 24, steps(), Battery(60.0, soc=0.6), reserve=0.2)
    assert not plan.feasible
    assert all(h.step.index == len(plan.steps) - 1 for h in plan.hours if h.below_reserve)
    assert all("360p" in h.step.rungs for h in plan.hours)
    assert any(h.unserved_wh > 0 for h in plan.hours)  # the battery ran empty: said, not hidden


def winter_config(kwp: float, battery_wh: float):
    return parse_config({"energy": {
        "enabled": True,
        "power": {"tdp_w": 15.0, "idle_fraction": 0.3, "cpus": 2},
        "costs": {"feed_cpu": 0.07, "rung_cpu": {"720p": 0.21, "480p": 0.14, "360p": 0.07},
                  "faster_preset_factor": 0.6, "reduced_fps_factor": 0.6, "member_cpu": 0.01},
        "site": {"latitude": 60.15, "longitude": -1.15, "timezone": "Europe/London",  # Lerwick, Shetland
                 "kwp": kwp, "tilt": 60, "battery_wh": battery_wh, "initial_soc": 0.9, "night_reserve": 0.2}}})


def test_a_short_winter_day_forces_the_documented_order_and_keeps_the_bottom_rung() -> None:
    pytest.importorskip("pvlib")
    day = dt.date(2024, 12, 21)  # six hours of low sun
    worst = []
    for kwp in (0.2, 0.07, 0.05, 0.03):  # the same site with ever smaller panels
        plan = plan_for_config(winter_config(kwp, 150.0), day)
        assert sum(h.pv_w for h in plan.hours) > 0
        assert plan.feasible and plan.min_soc >= 0.2 - 1e-9
        assert all("360p" in h.step.rungs for h in plan.hours)
        worst.append(ACTIONS[max(h.step.index for h in plan.hours)])
    # each smaller panel takes the next action of the documented order, never one further on
    assert worst == ["full", "faster_preset", "drop_middle", "drop_top"]
    hardest = plan_for_config(winter_config(0.01, 150.0), day)
    assert not hardest.feasible  # the floor load is more than the site has: said so
    assert {h.step.action for h in hardest.hours} == {"refuse_new_feeds"}
    assert all(h.step.rungs == ("360p",) for h in hardest.hours)


def test_plan_for_config_needs_a_site_and_a_sane_charge() -> None:
    with pytest.raises(EnergyError, match="no energy.site"):
        plan_for_config(parse_config({}), dt.date(2024, 6, 21))
    with pytest.raises(EnergyError, match="state of charge"):
        plan_for_config(winter_config(0.1, 100), dt.date(2024, 6, 21), soc=0.1)


def test_a_site_that_must_last_day_after_day_ends_where_it_started() -> None:
    pv = night_and_day(36.0)  # 144 Wh: more than the floor load, less than the full ladder
    loose = plan_day(pv, steps(), Battery(200.0, soc=0.7), reserve=0.25)
    kept = plan_day(pv, steps(), Battery(200.0, soc=0.7), reserve=0.25, end_soc=0.7)
    assert loose.feasible and loose.hours[-1].soc_end < 0.7  # the reserve alone lets the day run the battery down
    assert kept.feasible and kept.hours[-1].soc_end >= 0.7 - 1e-9 and kept.min_soc >= 0.25 - 1e-9
    assert sum(h.step.index for h in kept.hours) > sum(h.step.index for h in loose.hours)


def test_the_example_site_plans() -> None:
    """The site commented out in orbitcast.example.yaml, uncommented, is a valid config."""
    pytest.importorskip("pvlib")
    from pathlib import Path

    import yaml

    lines = (Path(__file__).resolve().parents[2] / "orbitcast.example.yaml").read_text().splitlines()
    start = lines.index("  # site:")
    block = ["  site:"] + [ln.replace("  #", "  ", 1) for ln in lines[start + 1:] if ln.startswith("  #   ")]
    text = "\n".join(ln for ln in lines[:start] if not ln.startswith("  site: null")) + "\n" + "\n".join(block) + "\n"
    config = parse_config(yaml.safe_load(text))
    assert config.energy.site is not None and config.energy.site.kwp == 0.1
    plan = plan_for_config(config, dt.date(2024, 12, 21))
    assert len(plan.hours) == 24 and plan.min_soc >= config.energy.site.night_reserve - 1e-9
