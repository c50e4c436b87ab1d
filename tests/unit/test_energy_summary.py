"""The /api/energy body (orbitcast/energy/summary.py): members' reports put together, the
SCI-like figure from the configured intensities, where the energy came from per the plan's
hour, and a plan made again hourly and on a new local date."""

from __future__ import annotations

import datetime as dt

import pytest

from orbitcast.config import LadderConfig, Rung, parse_config
from orbitcast.energy.costs import LadderCosts
from orbitcast.energy.config import CostsConfig
from orbitcast.energy.model import PowerModel
from orbitcast.energy.planner import ladder_steps, plan_day
from orbitcast.energy.sci import HOURS_PER_YEAR, J_PER_KWH
from orbitcast.energy.site import Battery
from orbitcast.energy.summary import PlanClock, combine, energy_body

UTC = dt.timezone.utc


def report(member: int, feeds: dict, process_w: float, source: str = "model") -> dict:
    return {"member": member, "source": source, "wall_s": 30.0, "window_s": 30.0, "process_w": process_w,
            "host_w": 9.0, "attributed_w": process_w, "rel_error": 0.5, "idle_share": 0.5, "feeds": feeds}


def rung(watts: float, jpms: float | None, n: int = 3) -> dict:
    return {"watts": watts, "error_w": watts / 2, "joules_per_media_s": jpms, "segments": n}


def test_members_reports_add_up_per_feed_and_rung() -> None:
    a = report(0, {"iss": {"720p": rung(2.0, 2.1), "360p": rung(1.0, 1.1)}}, 3.5)
    # iss moved to member 1 a moment ago: both report some of it
    b = report(1, {"iss": {"720p": rung(0.5, 0.4, 1), "360p": rung(0.25, None, 0)}, "moon": {"360p": rung(1.5, 1.4)}}, 2.0)
    feeds = combine([a, b])
    assert feeds["iss"]["rungs"]["720p"]["watts"] == pytest.approx(2.5)
    assert feeds["iss"]["rungs"]["720p"]["joules_per_media_s"] == pytest.approx(2.5)
    assert feeds["iss"]["rungs"]["360p"]["joules_per_media_s"] == pytest.approx(1.1)  # member 1 cut none
    assert feeds["iss"]["watts"] == pytest.approx(3.75)
    assert feeds["iss"]["joules_per_media_s"] == pytest.approx(2.5 + 1.1)  # a media second of every rung
    assert feeds["moon"]["joules_per_media_s"] == pytest.approx(1.4)


def test_sci_per_viewer_hour_from_the_grid_without_a_site() -> None:
    config = parse_config({"energy": {"enabled": True}})
    body = energy_body(config, [report(0, {"iss": {"360p": rung(4.0, 4.0)}}, 5.0)], viewers=4, viewers_counted="test",
                       plan=None, plan_error=None, now=dt.datetime(2024, 6, 1, 12, tzinfo=UTC))
    assert body["source"] == "model" and body["transcoding_w"] == 5.0 and body["error_w"] == pytest.approx(2.5)
    operational = 5.0 * 3600 / J_PER_KWH * 475.0
    embodied = 300.0 * 1000 / (4.0 * HOURS_PER_YEAR)
    sci = body["sci"]
    assert sci["g_per_hour"] == pytest.approx(operational + embodied)
    assert sci["g_per_viewer_hour"] == pytest.approx((operational + embodied) / 4)
    assert sci["error_g_per_viewer_hour"] == pytest.approx(operational * 0.5 / 4)
    assert sci["mix_j_per_hour"]["grid"] == pytest.approx(5.0 * 3600)
    assert body["plan"] is None and body["feeds"]["iss"]["rungs"]["360p"]["watts"] == 4.0
    nobody = energy_body(config, [], viewers=0, viewers_counted="test", plan=None, plan_error=None,
                         now=dt.datetime(2024, 6, 1, 12, tzinfo=UTC))
    assert nobody["sci"]["g_per_viewer_hour"] is None and nobody["source"] is None
    assert nobody["sci"]["g_per_hour"] == pytest.approx(embodied)  # the host exists: never zero


def test_each_feed_has_its_figure_per_hour_and_per_viewer_hour_of_its_own_viewers() -> None:
    config = parse_config({"energy": {"enabled": True}})
    reports = [report(0, {"iss": {"360p": rung(3.0, 3.0)}, "moon": {"360p": rung(1.0, 1.0)}}, 5.0)]
    now = dt.datetime(2024, 6, 1, 12, tzinfo=UTC)
    body = energy_body(config, reports, viewers=5, viewers_counted="test", plan=None, plan_error=None, now=now,
                       feed_viewers={"iss": 4})
    embodied = 300.0 * 1000 / (4.0 * HOURS_PER_YEAR)
    iss, moon = body["feeds"]["iss"]["sci"], body["feeds"]["moon"]["sci"]
    # its own watts from the grid, and the host's embodied carbon in its share of the feeds' watts
    assert iss["g_per_hour"] == pytest.approx(3.0 * 3600 / J_PER_KWH * 475.0 + embodied * 0.75)
    assert moon["g_per_hour"] == pytest.approx(1.0 * 3600 / J_PER_KWH * 475.0 + embodied * 0.25)
    assert iss["viewers"] == 4 and iss["g_per_viewer_hour"] == pytest.approx(iss["g_per_hour"] / 4)
    assert iss["error_g_per_viewer_hour"] == pytest.approx(3.0 * 3600 / J_PER_KWH * 475.0 * 0.5 / 4)
    assert moon["viewers"] == 0 and moon["g_per_viewer_hour"] is None  # nobody watching: per hour only
    # an audience stated for the whole system is not split by feed
    stated = energy_body(config, reports, viewers=10, viewers_counted="stated", plan=None, plan_error=None, now=now)
    assert stated["feeds"]["iss"]["sci"]["viewers"] is None and stated["feeds"]["iss"]["sci"]["g_per_viewer_hour"] is None
    assert stated["sci"]["g_per_viewer_hour"] is not None


def site_config(**site) -> object:
    return parse_config({"energy": {"enabled": True, "site": {
        "latitude": 60.15, "longitude": -1.15, "timezone": "Europe/London", "kwp": 0.13, "battery_wh": 300, **site}}})


def small_plan(pv: list[float]):
    ladder = LadderConfig(rungs=(Rung(name="hi", width=1280, height=720, video_bitrate=3_000_000),
                                 Rung(name="lo", width=640, height=360, video_bitrate=800_000)))
    steps = ladder_steps(ladder, LadderCosts.from_config(CostsConfig()), PowerModel.from_tdp(15.0), feeds=1, members=1, cpus=2)
    starts = [dt.datetime(2024, 6, 1, h, tzinfo=dt.timezone(dt.timedelta(hours=1))) for h in range(24)]
    return plan_day(pv, steps, Battery(300.0, 0.6), 0.2, starts)


def test_the_current_hour_of_the_plan_says_where_the_energy_came_from() -> None:
    pv = [0.0] * 12 + [100.0] + [3.0] + [0.0] * 10  # noon: plenty; 13:00: less than the load
    plan = small_plan(pv)
    config = site_config()
    reports = [report(0, {"iss": {"lo": rung(6.0, 6.0)}}, 6.0)]

    def at(h: int) -> dict:
        now = dt.datetime(2024, 6, 1, h, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))).astimezone(UTC)
        return energy_body(config, reports, viewers=2, viewers_counted="test", plan=plan, plan_error=None, now=now)

    noon = at(12)
    assert noon["plan"]["current_hour"].startswith("2024-06-01T12:00")
    assert noon["sci"]["mix_j_per_hour"]["solar_direct"] == pytest.approx(6.0 * 3600)
    assert noon["sci"]["operational_g_per_hour"] == 0.0  # solar used as it is made
    one = at(13)
    load = plan.hours[13].load_w
    assert one["sci"]["mix_j_per_hour"]["solar_direct"] == pytest.approx(6.0 * 3600 * 3.0 / load)
    assert one["sci"]["mix_j_per_hour"]["battery_delivered"] == pytest.approx(6.0 * 3600 * (1 - 3.0 / load))
    assert one["sci"]["mix_j_per_hour"]["battery_upstream"] > one["sci"]["mix_j_per_hour"]["battery_delivered"]
    night = at(2)
    assert night["plan"]["current_step"]["index"] == plan.hours[2].step.index
    assert len(night["plan"]["hours"]) == 24 and night["plan"]["steps"][0]["action"] == "full"
    assert "lo" in night["plan"]["current_step"]["rungs"]  # the bottom rung stays


def test_the_plan_is_made_again_hourly_and_on_a_new_local_date() -> None:
    made: list[dt.date] = []
    now = [dt.datetime(2024, 6, 1, 21, 10, tzinfo=UTC)]  # 22:10 in London (BST)

    def make(config, day: dt.date):  # noqa: ANN001
        made.append(day)
        return small_plan([0.0] * 24)

    clock = PlanClock(site_config(), make=make, clock=lambda: now[0])
    clock.get()
    now[0] += dt.timedelta(minutes=40)
    clock.get()
    assert made == [dt.date(2024, 6, 1)]
    now[0] += dt.timedelta(minutes=30)  # 23:20: an hour since the first
    clock.get()
    now[0] += dt.timedelta(minutes=45)  # 00:05 the next local day
    clock.get()
    assert made == [dt.date(2024, 6, 1), dt.date(2024, 6, 1), dt.date(2024, 6, 2)]


def test_a_plan_clock_needs_a_site() -> None:
    with pytest.raises(ValueError):
        PlanClock(parse_config({}))
