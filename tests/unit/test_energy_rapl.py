"""RAPL through a powercap tree laid out in a temp dir: which zones count, and deltas across
a counter wrap; the meter labels what it measured and divides it by CPU time."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbitcast.energy.attribution import WorkItem, attribute, split_cpu
from orbitcast.energy.cpu import CpuTimes, read_proc_stat
from orbitcast.energy.errors import EnergyError
from orbitcast.energy.meter import EnergyMeter
from orbitcast.energy.model import PowerModel, PowerSample
from orbitcast.energy.rapl import RaplReader, counter_delta

MAX = 262_143_328_850  # a real max_energy_range_uj


def zone(root: Path, dirname: str, name: str, uj: int, max_uj: int = MAX) -> Path:
    d = root / dirname
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_uj(d: Path, uj: int) -> None:
    (d / "energy_uj").write_text(f"{uj}\n")


def test_counter_delta_across_a_wrap() -> None:
    assert counter_delta(100, 350, MAX) == 250
    assert counter_delta(MAX - 1_000_000, 500_000, MAX) == 1_500_000


def test_package_zones_are_summed_across_a_wrap_and_subzones_are_not_counted(tmp_path: Path) -> None:
    (tmp_path / "intel-rapl").mkdir()  # the control type directory: no counter
    p0 = zone(tmp_path, "intel-rapl:0", "package-0", MAX - 2_000_000)
    p1 = zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    core = zone(tmp_path, "intel-rapl:0:0", "core", 1_000)
    reader = RaplReader(tmp_path)
    assert reader.available and reader.domain == "package"
    assert [z.name for z in reader.zones] == ["package-0", "package-1"]
    before = reader.read()
    set_uj(p0, 3_000_000)      # wrapped: 2 J to the top, 3 J after
    set_uj(p1, 12_000_000)     # 7 J
    set_uj(core, 900_000_000)  # inside package-0: not added again
    assert reader.joules_since(before) == pytest.approx(2 + 3 + 7)


def test_psys_is_preferred_when_present(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    psys = zone(tmp_path, "intel-rapl:1", "psys", 10_000_000, max_uj=20_000_000)
    reader = RaplReader(tmp_path)
    assert reader.domain == "psys" and [z.name for z in reader.zones] == ["psys"]
    before = reader.read()
    set_uj(psys, 4_000_000)  # wrapped at its own, smaller range
    assert reader.joules_since(before) == pytest.approx(14.0)


def test_amd_naming_is_read(tmp_path: Path) -> None:
    zone(tmp_path, "amd-rapl:0", "package-0", 1)
    assert RaplReader(tmp_path).available


def test_no_tree_or_unreadable_counters_mean_not_available(tmp_path: Path) -> None:
    assert not RaplReader(tmp_path / "missing").available
    d = zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (d / "energy_uj").write_text("not a number\n")
    reader = RaplReader(tmp_path)
    assert not reader.available and reader.domain == ""
    with pytest.raises(OSError):
        reader.read()


def test_proc_stat_is_read(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 10 50 1000 5 2 3 7 0 0\ncpu0 50 5 25 500 2 1 1 3 0 0\ncpu1 50 5 25 500 3 1 2 4 0 0\nintr 1 2\n")
    times = read_proc_stat(stat, ticks_per_s=100)
    assert times.cpus == 2 and times.busy_s == pytest.approx((100 + 10 + 50 + 2 + 3) / 100)  # steal left out


class Host:
    """A fake host: a clock, CPU time and a psys counter that the test advances."""

    def __init__(self, root: Path) -> None:
        self.t, self.busy, self.uj = 0.0, 0.0, MAX - 5_000_000
        self.zone = zone(root, "intel-rapl:1", "psys", self.uj)

    def run(self, seconds: float, cpu_s: float, watts: float) -> None:
        self.t += seconds
        self.busy += cpu_s
        self.uj = (self.uj + round(watts * seconds * 1e6)) % MAX
        set_uj(self.zone, self.uj)

    def meter(self, model: PowerModel, rapl_root: Path) -> EnergyMeter:
        return EnergyMeter(model, RaplReader(rapl_root), cpu=lambda: CpuTimes(self.busy, 4), clock=lambda: self.t)


def test_rapl_interval_across_a_wrap_is_attributed_by_cpu_time(tmp_path: Path) -> None:
    host = Host(tmp_path)
    model = PowerModel(idle_w=10.0, k_w=40.0, rel_error=0.5)
    meter = host.meter(model, tmp_path)
    host.run(10.0, cpu_s=8.0, watts=30.0)  # 300 J, across the counter's wrap
    interval = meter.sample()
    assert interval.source == "rapl" and interval.joules == pytest.approx(300.0)
    assert interval.idle_joules == pytest.approx(100.0) and interval.active_joules == pytest.approx(200.0)
    # Two rungs encoded for the whole interval, one using three times the other's CPU time;
    # they account for all of the host's CPU time.
    rows = attribute(interval, [WorkItem("iss/720p/7", 6.0, 10.0), WorkItem("iss/360p/7", 2.0, 10.0)])
    by = {r.key: r for r in rows}
    assert by["iss/720p/7"].active_joules == pytest.approx(150.0) and by["iss/360p/7"].active_joules == pytest.approx(50.0)
    assert by["iss/720p/7"].idle_joules == by["iss/360p/7"].idle_joules == pytest.approx(50.0)
    assert sum(r.joules for r in rows) == pytest.approx(300.0)
    assert {r.energy_source for r in rows} == {"rapl"}
    assert all(0 < r.error_joules < r.joules for r in rows)


def test_work_that_is_part_of_the_host_gets_its_share_only(tmp_path: Path) -> None:
    host = Host(tmp_path)
    meter = host.meter(PowerModel(10.0, 40.0, 0.5), tmp_path)
    host.run(10.0, cpu_s=8.0, watts=30.0)
    [row] = attribute(meter.sample(), [WorkItem("iss/720p/7", 2.0, 10.0)], idle_share=0.5)
    assert row.active_joules == pytest.approx(200.0 * 2 / 8) and row.idle_joules == pytest.approx(50.0)


def test_without_rapl_rows_say_model(tmp_path: Path) -> None:
    t, busy = [0.0], [0.0]
    model = PowerModel.from_tdp(20.0, idle_fraction=0.25)
    meter = EnergyMeter(model, RaplReader(tmp_path / "none"), cpu=lambda: CpuTimes(busy[0], 2), clock=lambda: t[0])
    t[0], busy[0] = 4.0, 3.0
    interval = meter.sample()
    assert interval.source == "model" and meter.source == "model"
    assert interval.joules == pytest.approx(5.0 * 4 + 15.0 * 3.0 / 2)  # idle 5 W x 4 s + k x CPU s / CPUs
    rows = attribute(interval, [WorkItem("iss/480p/3", 1.0, 4.0), WorkItem("iss/360p/3", 2.0, 4.0)])
    assert [r.energy_source for r in rows] == ["model", "model"]
    assert rows[0].error_joules == pytest.approx(rows[0].joules * 0.5)


def test_calibration_against_rapl_recovers_the_host_line(tmp_path: Path) -> None:
    host = Host(tmp_path)
    meter = host.meter(PowerModel.from_tdp(100.0), tmp_path)
    for u in (0.1, 0.3, 0.5, 0.7, 0.9, 0.2):
        host.run(5.0, cpu_s=u * 5.0 * 4, watts=12.0 + 30.0 * u)
        meter.sample()
    model = meter.calibrate()
    assert model.calibrated and model.idle_w == pytest.approx(12.0, abs=0.01) and model.k_w == pytest.approx(30.0, abs=0.01)


def test_calibration_refuses_samples_that_cannot_fix_a_slope() -> None:
    with pytest.raises(EnergyError, match="spread"):
        PowerModel.from_tdp(10).calibrated_against([PowerSample(0.5, 8.0)] * 5)
    with pytest.raises(EnergyError, match="at least 3"):
        PowerModel.from_tdp(10).calibrated_against([PowerSample(0.1, 8.0)])


def test_split_cpu_follows_the_weights() -> None:
    assert split_cpu(3.0, {"720p": 2.0, "360p": 1.0}) == pytest.approx({"720p": 2.0, "360p": 1.0})
    with pytest.raises(EnergyError):
        split_cpu(1.0, {"720p": 0.0})
