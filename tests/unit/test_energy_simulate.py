"""A day in minutes (orbitcast/energy/simulate.py): the planner re-planning every site hour on
a compressed clock. The clock and the sleep are injected, so no test waits; the winter day is
pvlib's, and `orbitcast energy simulate` prints the hours and writes a PNG that opens."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from orbitcast.catalog import Catalog
from orbitcast.config import LadderConfig, Rung, parse_config
from orbitcast.energy.config import CostsConfig
from orbitcast.energy.costs import LadderCosts
from orbitcast.energy.errors import EnergyError
from orbitcast.energy.model import PowerModel
from orbitcast.energy.planner import ladder_steps
from orbitcast.energy.simulate import (
    SiteClock,
    measured_joules_per_media_s,
    run_day,
    scaled_to_measured,
    simulate_for_config,
)
from orbitcast.energy.site import Battery
from orbitcast.segment import Segment, SegmentEnergy
from orbitcast.store import Store

UTC = dt.timezone.utc
LERWICK = {"latitude": 60.15, "longitude": -1.15, "altitude_m": 80, "timezone": "Europe/London", "kwp": 0.13,
           "tilt": 60, "battery_wh": 300, "initial_soc": 0.6, "night_reserve": 0.2, "end_soc": "start"}
# the reference machine's 2 CPUs (docs/energy.md), whatever runs the test: the model's load depends on them
ENERGY = {"enabled": True, "power": {"cpus": 2}, "site": LERWICK}
LADDER = LadderConfig(rungs=(Rung(name="720p", width=1280, height=720, video_bitrate=3_000_000),
                             Rung(name="480p", width=854, height=480, video_bitrate=1_400_000),
                             Rung(name="360p", width=640, height=360, video_bitrate=800_000)))


class FakeWall:
    """A wall clock that only moves when the simulation sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def steps():
    return ladder_steps(LADDER, LadderCosts.from_config(CostsConfig()), PowerModel.from_tdp(15.0), feeds=1, members=2,
                        cpus=2)


def two_days(pv_day: list[float]) -> tuple[list[float], list[dt.datetime]]:
    t0 = dt.datetime(2024, 12, 21, tzinfo=UTC)
    return pv_day * 2, [t0 + dt.timedelta(hours=h) for h in range(48)]


SHORT_DAY = [0.0] * 9 + [5.0, 25.0, 40.0, 40.0, 25.0, 5.0] + [0.0] * 9  # 09:00-15:00


def test_the_site_clock_runs_a_day_in_the_minutes_asked_without_waiting_here() -> None:
    wall = FakeWall()
    pv, starts = two_days(SHORT_DAY)
    seen: list[tuple[float, str]] = []
    sim = run_day(pv, starts, steps(), Battery(300.0, 0.6), 0.2, minutes=2.0, wall=wall, sleep=wall.sleep,
                  on_hour=lambda h: seen.append((wall.t - 1000.0, f"{h.hour.start:%H}")))
    assert len(sim.hours) == 24
    # each site hour is told when the site clock has run through it: every 5 wall seconds (120 s / 24)
    assert [s for _, s in seen] == [f"{h:02d}" for h in range(24)]
    assert [t for t, _ in seen] == pytest.approx([5.0 * (h + 1) for h in range(24)])
    assert sum(wall.sleeps) == pytest.approx(120.0)  # the day ends when the site clock reaches midnight


def test_minutes_0_runs_as_fast_as_it_can() -> None:
    wall = FakeWall()
    pv, starts = two_days(SHORT_DAY)
    run_day(pv, starts, steps(), Battery(300.0, 0.6), 0.2, minutes=0, wall=wall, sleep=wall.sleep)
    assert wall.sleeps == []


def test_the_site_clock_maps_wall_seconds_to_site_time() -> None:
    wall = FakeWall()
    start = dt.datetime(2024, 12, 21, tzinfo=UTC)
    clock = SiteClock(start, speed=720.0, wall=wall)  # 24 h in 2 min
    wall.sleep(10.0)
    assert clock.now() == start + dt.timedelta(hours=2)
    assert clock.wall_until(start + dt.timedelta(hours=3)) == pytest.approx(5.0)
    assert clock.wall_until(start) == 0.0
    with pytest.raises(EnergyError):
        SiteClock(start, speed=0.0)


def test_a_short_day_the_battery_stays_above_the_reserve_and_the_bottom_rung_stays() -> None:
    pv, starts = two_days(SHORT_DAY)
    # the full ladder all night would take the battery from 60 % below a 40 % reserve by 09:00
    assert 9 * steps()[0].load_w / 0.95 > 0.2 * 300.0
    held = run_day(pv, starts, steps(), Battery(300.0, 0.6), 0.4, minutes=0)
    assert all(h.hour.soc_end >= 0.4 - 1e-9 and not h.hour.below_reserve for h in held.hours)
    assert held.min_soc < 0.41  # the reserve is what bound it
    sim = run_day(pv, starts, steps(), Battery(300.0, 0.6), 0.2, end_soc="start", minutes=0)
    assert all(h.hour.soc_end >= 0.2 - 1e-9 and not h.hour.below_reserve for h in sim.hours)
    assert all("360p" in h.rungs for h in sim.hours)
    # degraded at night, more rungs while the sun shines
    night = max(h.hour.step.index for h in sim.hours[:8])
    noon = min(h.hour.step.index for h in sim.hours[10:14])
    assert night > noon
    # every hour re-plans 24 h ahead from the battery as it stands
    assert all(h.plan.hours[0].soc_start == pytest.approx(h.hour.soc_start) for h in sim.hours)
    assert sim.hours[5].plan.hours[0].start == starts[5] and len(sim.hours[5].plan.hours) == 24


def test_bad_inputs_are_refused() -> None:
    pv, starts = two_days(SHORT_DAY)
    with pytest.raises(EnergyError, match="48 hours"):
        run_day(pv[:24], starts[:24], steps(), Battery(150.0, 0.5), 0.2)
    with pytest.raises(EnergyError, match="minutes"):
        run_day(pv, starts, steps(), Battery(150.0, 0.5), 0.2, minutes=-1)
    with pytest.raises(EnergyError, match="energy.site"):
        simulate_for_config(parse_config({}), dt.date(2024, 12, 21), minutes=0)


def test_a_catalogs_joules_scale_the_load() -> None:
    rows = [{"feed": "iss", "rendition": r, "duration": 1.0, "joules": j} for r, j in
            (("720p", 2.0), ("720p", 2.4), ("480p", 1.9), ("360p", 1.6), ("360p", None))]
    rows += [{"feed": "moon", "rendition": "720p", "duration": 2.0, "joules": 4.0}]
    measured = measured_joules_per_media_s(rows)
    assert measured == pytest.approx({"720p": (2.2 + 2.0) / 2, "480p": 1.9, "360p": 1.6})
    scaled = scaled_to_measured(steps(), measured, feeds=1, base_load_w=1.0)
    assert scaled[0].load_w == pytest.approx(1.0 + 2.1 + 1.9 + 1.6)
    # what each action saves keeps its proportion
    model = steps()
    k = (scaled[0].load_w - 1.0) / (model[0].load_w - 1.0)
    assert [s.load_w - 1.0 for s in scaled] == pytest.approx([(s.load_w - 1.0) * k for s in model])
    with pytest.raises(EnergyError, match="480p"):
        scaled_to_measured(steps(), {"720p": 2.0, "360p": 1.0}, feeds=1, base_load_w=0.0)


def test_a_winter_day_in_lerwick_shrinks_the_ladder_at_night_and_grows_it_at_noon() -> None:
    pytest.importorskip("pvlib")
    config = parse_config({"energy": ENERGY})
    sim = simulate_for_config(config, dt.date(2024, 12, 21), minutes=0)
    hours = [h.hour for h in sim.hours]
    assert [f"{h.start:%H}" for h in hours] == [f"{h:02d}" for h in range(24)]
    assert hours[2].pv_w == 0 and hours[12].pv_w > 0
    assert hours[2].step.index > hours[12].step.index  # fewer rungs at night than at noon
    assert len(hours[12].step.rungs) > len(hours[2].step.rungs)
    assert all(h.step.rungs[-1] == "360p" for h in hours)  # the bottom rung is never dropped
    assert sim.min_soc >= LERWICK["night_reserve"]
    assert not any(h.below_reserve for h in hours)


def test_orbitcast_energy_simulate_prints_each_hour_and_writes_a_png(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pvlib")
    pytest.importorskip("matplotlib")
    from PIL import Image

    from pipelines.cli import main

    cfg = tmp_path / "orbitcast.yaml"
    cfg.write_text(yaml.safe_dump({"energy": ENERGY}))
    png = tmp_path / "day.png"
    assert main(["energy", "simulate", "--config", str(cfg), "--date", "2024-12-21", "--minutes", "0",
                 "--png", str(png)]) == 0
    out, err = capsys.readouterr()
    hours = [line for line in out.splitlines() if re.match(r"\d\d:00 ", line)]
    assert [h[:5] for h in hours] == [f"{h:02d}:00" for h in range(24)]
    assert all(line.split()[-1].rstrip("*") == "360p" for line in hours)  # the bottom rung, on every hour
    assert "lowest" in out and f"wrote {png}" in err
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 500
    for bad in (["--minutes", "-1"], ["--minutes", "nan"], ["--date", "21/12/2024"], ["--soc", "0.1"]):
        assert main(["energy", "simulate", "--config", str(cfg), "--png", str(png), *bad]) == 2
        assert capsys.readouterr().err.startswith("orbitcast energy: ")
    nosite = tmp_path / "nosite.yaml"
    nosite.write_text(yaml.safe_dump({"energy": {"enabled": True}}))
    assert main(["energy", "simulate", "--config", str(nosite), "--minutes", "0"]) == 2
    assert "energy.site" in capsys.readouterr().err
    assert main(["energy", "simulate", "--config", str(cfg), "--minutes", "0", "--catalog", str(tmp_path / "none"),
                 "--png", str(png)]) == 2
    assert "no rows with joules" in capsys.readouterr().err
    # a catalog the pipeline wrote with energy on: the load follows its joules
    catalog = Catalog(Store(str(tmp_path / "store")))
    t0 = dt.datetime(2024, 3, 2, 10, tzinfo=UTC)
    for seq in range(3):
        for rung, joules in (("720p", 2.2), ("480p", 1.9), ("360p", 1.7)):
            catalog.add(Segment("iss", rung, seq, float(seq), 1.0, t0 + dt.timedelta(seconds=seq), b"x",
                                energy=SegmentEnergy(joules, "model", joules / 2)))
    catalog.flush()
    assert main(["energy", "simulate", "--config", str(cfg), "--minutes", "0", "--catalog", str(tmp_path / "store"),
                 "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "(catalog)" in out
    # each hour's load is its step's, scaled so the full ladder draws the catalog's 5.8 W
    config = parse_config({"energy": ENERGY})
    model = ladder_steps(config.ladder, LadderCosts.from_config(config.energy.costs),
                         PowerModel.from_config(config.energy.power), feeds=len(config.feeds),
                         members=max(config.transcoders, len(config.feeds)), cpus=2)
    scaled = scaled_to_measured(model, {"720p": 2.2, "480p": 1.9, "360p": 1.7}, feeds=1, base_load_w=0.0)
    assert scaled[0].load_w == pytest.approx(5.8)
    for line in (x for x in out.splitlines() if re.match(r"\d\d:00 ", x)):
        assert float(line.split()[2]) == pytest.approx(scaled[int(line.split()[6])].load_w, abs=0.006)
