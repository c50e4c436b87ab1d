"""Energy in /metrics (orbitcast/metrics/energy.py): a pool member's running totals become
counters that the metrics hub keeps from falling, and the /api/energy body becomes gauges;
both rendered and read back with prometheus_client's own parser."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orbitcast.config import LadderConfig, Rung, parse_config
from orbitcast.energy.accounting import MemberEnergy
from orbitcast.energy.config import CostsConfig, EnergyConfig
from orbitcast.energy.costs import LadderCosts
from orbitcast.energy.cpu import CpuTimes
from orbitcast.energy.meter import EnergyMeter
from orbitcast.energy.model import PowerModel
from orbitcast.energy.planner import ladder_steps, plan_day
from orbitcast.energy.site import Battery
from orbitcast.energy.summary import energy_body
from orbitcast.metrics import MetricsHub, render
from orbitcast.metrics.energy import energy_families, member_snapshots
from orbitcast.segment import Segment

RUNGS = (Rung(name="hi", width=320, height=240, video_bitrate=300_000),
         Rung(name="lo", width=160, height=120, video_bitrate=100_000))
CFG = EnergyConfig(enabled=True, costs=CostsConfig(rung_cpu={"hi": 0.3, "lo": 0.1}))
T0 = dt.datetime(2024, 3, 1, 8, tzinfo=dt.timezone.utc)
BST = dt.timezone(dt.timedelta(hours=1))
Samples = dict[str, dict[tuple, float]]


def parse(text: bytes) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


class Host:
    def __init__(self) -> None:
        self.t = self.host_cpu = self.process_cpu = 0.0

    def advance(self, wall: float, host_cpu: float, process_cpu: float) -> None:
        self.t += wall
        self.host_cpu += host_cpu
        self.process_cpu += process_cpu


def member(host: Host, tmp_path: Path) -> MemberEnergy:
    # no powercap tree: the model (idle 4 W, 10 W at full load over 2 CPUs)
    meter = EnergyMeter(PowerModel(idle_w=4.0, k_w=10.0, rel_error=0.5), None,
                        cpu=lambda: CpuTimes(host.host_cpu, 2), clock=lambda: host.t, cpus=2)
    return MemberEnergy(CFG, idle_share=0.5, meter=meter, process_cpu=lambda: host.process_cpu, clock=lambda: host.t)


def run_second(host: Host, feed, seq: int) -> list[Segment]:
    feed.pushed(0.2)
    host.advance(wall=1.0, host_cpu=1.0, process_cpu=0.8)
    return feed.stamp([Segment("a", r.name, seq, float(seq), 1.0, T0, b"x") for r in RUNGS])


def test_member_totals_are_counters_that_add_up_to_the_segments_joules(tmp_path: Path) -> None:
    host = Host()
    m = member(host, tmp_path)
    a = m.feed("a", RUNGS, 30.0)
    stamped = [s for seq in range(3) for s in run_second(host, a, seq)]
    hub = MetricsHub()
    for source, snap in member_snapshots([{"member": 0, **m.report()}], now=10.0):
        hub.report(source, snap, 10.0)
    got = parse(render(hub.merged(10.0)))
    for r in RUNGS:
        joules = sum(s.energy.joules for s in stamped if s.rendition == r.name)
        assert value(got, "orbitcast_energy_joules_total", feed="a", rendition=r.name, source="model") \
            == pytest.approx(joules)
        assert value(got, "orbitcast_energy_media_seconds_total", feed="a", rendition=r.name) == pytest.approx(3.0)
    # the process: 3 s of 0.8 of 1 CPU s x 10 W / 2 CPUs active, and half of 4 W idle
    assert value(got, "orbitcast_energy_transcoder_joules_total", source="model") == pytest.approx(3 * (4.0 + 2.0))
    assert value(got, "orbitcast_metrics_sources", component="transcoder") == 1


def test_energy_counters_never_fall_across_a_restart_or_a_late_relay(tmp_path: Path) -> None:
    host = Host()
    m = member(host, tmp_path)
    a = m.feed("a", RUNGS, 30.0)
    run_second(host, a, 0)
    early = {"member": 0, **m.report()}
    run_second(host, a, 1)
    late = {"member": 0, **m.report()}
    hub = MetricsHub()

    def total() -> float:
        return value(parse(render(hub.merged(5.0))), "orbitcast_energy_transcoder_joules_total", source="model")

    hub.report(*member_snapshots([late], 1.0)[0], 1.0)
    after_late = total()
    hub.report(*member_snapshots([early], 1.0)[0], 2.0)  # another replica relays an older report
    assert total() == after_late
    restarted = member(host, tmp_path)  # the member's process restarted: a new instance from 0
    run_second(host, restarted.feed("a", RUNGS, 30.0), 2)
    hub.report(*member_snapshots([{"member": 0, **restarted.report()}], 3.0)[0], 3.0)
    assert total() == pytest.approx(after_late + 6.0)


def small_plan():
    ladder = LadderConfig(rungs=(Rung(name="hi", width=1280, height=720, video_bitrate=3_000_000),
                                 Rung(name="lo", width=640, height=360, video_bitrate=800_000)))
    steps = ladder_steps(ladder, LadderCosts.from_config(CostsConfig()), PowerModel.from_tdp(15.0), feeds=1,
                         members=1, cpus=2)
    starts = [dt.datetime(2024, 12, 21, h, tzinfo=BST) for h in range(24)]
    pv = [0.0] * 10 + [20.0, 40.0, 40.0, 20.0] + [0.0] * 10
    return plan_day(pv, steps, Battery(60.0, 0.6), 0.2, starts)


def test_the_api_energy_body_becomes_gauges_with_the_plans_current_hour() -> None:
    config = parse_config({"energy": {"enabled": True, "site": {
        "latitude": 60.15, "longitude": -1.15, "timezone": "Europe/London", "kwp": 0.13, "battery_wh": 60}}})
    report = {"member": 0, "source": "model", "wall_s": 30.0, "window_s": 30.0, "process_w": 5.0, "host_w": 9.0,
              "attributed_w": 5.0, "rel_error": 0.5, "idle_share": 0.5,
              "feeds": {"iss": {"hi": {"watts": 3.0, "error_w": 1.5, "joules_per_media_s": 3.1, "segments": 30},
                                "lo": {"watts": 2.0, "error_w": 1.0, "joules_per_media_s": None, "segments": 0}}}}
    plan = small_plan()
    now = dt.datetime(2024, 12, 21, 2, 15, tzinfo=BST)
    body = energy_body(config, [report], viewers=4, viewers_counted="test", plan=plan, plan_error=None, now=now,
                       feed_viewers={"iss": 3})
    got = parse(render(energy_families(body, now.timestamp())))
    assert value(got, "orbitcast_energy_watts", feed="iss", rendition="hi", source="model") == 3.0
    assert value(got, "orbitcast_energy_joules_per_media_second", feed="iss", rendition="hi") == 3.1
    assert ("rendition", "lo") not in {kv for k in got["orbitcast_energy_joules_per_media_second"] for kv in k}
    assert value(got, "orbitcast_energy_transcoding_watts", source="model") == 5.0
    assert value(got, "orbitcast_sci_grams_per_viewer_hour") == pytest.approx(body["sci"]["g_per_viewer_hour"])
    assert value(got, "orbitcast_sci_grams_per_hour") == pytest.approx(body["sci"]["g_per_hour"])
    # one feed: its own figure, per hour and per viewer-hour of its 3 viewers
    feed_hour = value(got, "orbitcast_sci_feed_grams_per_hour", feed="iss")
    assert feed_hour == pytest.approx(body["feeds"]["iss"]["sci"]["g_per_hour"]) and feed_hour > 0
    assert value(got, "orbitcast_sci_feed_grams_per_viewer_hour", feed="iss") == pytest.approx(feed_hour / 3)
    hour = plan.hours[2]
    assert value(got, "orbitcast_energy_plan_up") == 1
    assert value(got, "orbitcast_energy_plan_step") == hour.step.index
    assert value(got, "orbitcast_energy_plan_rungs") == len(hour.step.rungs)
    assert value(got, "orbitcast_energy_plan_load_watts") == pytest.approx(hour.load_w, abs=1e-3)
    # a quarter into the hour, a quarter of the way from its start charge to its end charge
    assert value(got, "orbitcast_energy_battery_soc_ratio") == pytest.approx(
        hour.soc_start + (hour.soc_end - hour.soc_start) / 4, abs=1e-4)
    assert value(got, "orbitcast_energy_battery_reserve_ratio") == 0.2


def test_no_viewers_no_site_and_accounting_off() -> None:
    config = parse_config({"energy": {"enabled": True}})
    now = dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc)
    body = energy_body(config, [], viewers=0, viewers_counted="test", plan=None, plan_error=None, now=now)
    got = parse(render(energy_families(body, now.timestamp())))
    assert "orbitcast_sci_grams_per_viewer_hour" not in got and got["orbitcast_sci_grams_per_hour"]
    assert not any(name.startswith("orbitcast_energy_plan") for name in got)
    failed = {**body, "plan_error": "EnergyError: the solar site model needs pvlib"}
    assert value(parse(render(energy_families(failed, now.timestamp()))), "orbitcast_energy_plan_up") == 0
    off = energy_body(parse_config({}), [], viewers=0, viewers_counted="test", plan=None, plan_error=None, now=now)
    assert energy_families(off, now.timestamp()) == {}


def test_the_ladder_the_live_pipeline_follows_becomes_gauges() -> None:
    """energy.follow_plan: the governor's status (under `ladder` in /api/energy) in /metrics."""
    from orbitcast.energy.governor import LadderGovernor
    from tests.unit.test_energy_governor import Wall, config

    wall = Wall()
    governor = LadderGovernor(config(minutes=24.0), wall)  # Lerwick's winter night: a degraded step
    status = governor.status()
    got = parse(render(energy_families({"ladder": status}, 0.0)))
    assert value(got, "orbitcast_energy_ladder_up") == 1
    assert value(got, "orbitcast_energy_ladder_step") == status["step"]["index"] > 0
    on = {dict(labels)["rendition"] for labels in got["orbitcast_energy_ladder_rung_on"]}
    assert on == set(status["step"]["rungs"]) and "360p" in on
    fast = {dict(labels)["rendition"]: v for labels, v in got["orbitcast_energy_ladder_rung_faster"].items()}
    assert fast == {r: float(r in status["step"]["fast_rungs"]) for r in status["step"]["rungs"]}
    assert value(got, "orbitcast_energy_ladder_soc_ratio") == pytest.approx(status["soc"])
    down = parse(render(energy_families({"ladder": {"following": True, "error": "RayActorError: gone"}}, 0.0)))
    assert value(down, "orbitcast_energy_ladder_up") == 0 and "orbitcast_energy_ladder_step" not in down
    assert energy_families({"ladder": {"following": False}}, 0.0) == {}
