"""Joules per segment in a transcoder pool member (orbitcast/energy/accounting.py): the
figures a fake powercap tree and a fixed CPU history imply, and a real LiveTranscoder whose
segments come out carrying joules from the power model."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orbitcast.config import LadderConfig, Rung
from orbitcast.energy.accounting import MemberEnergy
from orbitcast.energy.config import CostsConfig, EnergyConfig, PowerConfig
from orbitcast.energy.cpu import CpuTimes
from orbitcast.energy.meter import EnergyMeter
from orbitcast.energy.model import PowerModel
from orbitcast.energy.rapl import RaplReader
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.segment import Part, Segment

MAX = 262_143_328_850
RUNGS = (Rung(name="hi", width=320, height=240, video_bitrate=300_000),
         Rung(name="lo", width=160, height=120, video_bitrate=100_000))
# hi costs three times what lo does
CFG = EnergyConfig(enabled=True, costs=CostsConfig(rung_cpu={"hi": 0.3, "lo": 0.1}))
T0 = datetime(2024, 3, 1, 8, tzinfo=timezone.utc)


def seg(feed: str, rendition: str, seq: int) -> Segment:
    return Segment(feed, rendition, seq, float(seq), 1.0, T0, b"x" * 10)


class Host:
    """A clock, the host's CPU time and this process's CPU time, moved by the test."""

    def __init__(self) -> None:
        self.t = 0.0
        self.host_cpu = 0.0
        self.process_cpu = 0.0

    def advance(self, wall: float, host_cpu: float, process_cpu: float) -> None:
        self.t += wall
        self.host_cpu += host_cpu
        self.process_cpu += process_cpu


def package(root: Path, uj: int) -> Path:
    d = root / "intel-rapl:0"
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text("package-0\n")
    (d / "max_energy_range_uj").write_text(f"{MAX}\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    return d


def member(host: Host, rapl_root: Path, idle_share: float = 0.5) -> MemberEnergy:
    meter = EnergyMeter(PowerModel(idle_w=4.0, k_w=10.0, rel_error=0.5), RaplReader(rapl_root),
                        cpu=lambda: CpuTimes(host.host_cpu, 2), clock=lambda: host.t, cpus=2)
    return MemberEnergy(CFG, idle_share=idle_share, meter=meter, process_cpu=lambda: host.process_cpu,
                        clock=lambda: host.t)


def test_rapl_joules_go_to_feeds_by_push_cpu_to_rungs_by_cost_and_across_a_wrap(tmp_path: Path) -> None:
    host = Host()
    zone = package(tmp_path, MAX - 10_000_000)  # 10 J before the counter wraps
    m = member(host, tmp_path)
    a, b = m.feed("a", RUNGS, 30.0), m.feed("b", RUNGS, 30.0)
    a.pushed(0.1)
    b.pushed(0.3)  # b's pushes took three times a's: 1/4 of the process's CPU goes to a
    host.advance(wall=2.0, host_cpu=2.0, process_cpu=1.0)
    (zone / "energy_uj").write_text(f"{20_000_000}\n")  # wrapped: 10 J + 20 J
    out = a.stamp([seg("a", "hi", 0), seg("a", "lo", 0)])
    # the interval: 30 J, of which idle 4 W x 2 s = 8 J, active 22 J. This process used 1.0 of
    # the host's 2.0 CPU s: a/hi 0.25 x 3/4 = 0.1875 s -> 22 x 0.1875 / 2 = 2.0625 J active, and
    # idle 8 J x 0.5 shared by wall among the 4 (feed, rung) items of the interval: 1 J each.
    hi, lo = out
    assert hi.energy is not None and lo.energy is not None
    assert hi.energy.source == "rapl" == lo.energy.source
    assert hi.energy.joules == pytest.approx(2.0625 + 1.0)
    assert lo.energy.joules == pytest.approx(22 * 0.0625 / 2 + 1.0)
    assert hi.energy.error_joules == pytest.approx(0.05 * hi.energy.joules)
    assert hi.digest == seg("a", "hi", 0).digest and hi.data == seg("a", "hi", 0).data
    # b's segments are cut a moment later, in the same interval: they take what it left them
    host.advance(wall=0.1, host_cpu=0.0, process_cpu=0.0)
    b_hi, = b.stamp([seg("b", "hi", 0)])
    assert b_hi.energy is not None and b_hi.energy.joules == pytest.approx(22 * 0.5625 / 2 + 1.0)
    # a segment takes a rung's joules once: the next one of a/hi has only what came after
    host.advance(wall=1.0, host_cpu=0.5, process_cpu=0.5)
    (zone / "energy_uj").write_text(f"{30_000_000}\n")  # 10 J
    nothing_pushed, = a.stamp([seg("a", "hi", 1)])
    assert nothing_pushed.energy is None  # no push of any feed in that interval: nothing to attribute
    report = m.report()
    # two intervals: 0 -> 2.0 s and 2.0 -> 3.1 s (b's stamp at 2.1 s was too soon to close one)
    assert report["source"] == "rapl" and report["wall_s"] == pytest.approx(3.1)
    assert report["host_w"] == pytest.approx(40.0 / 3.1)
    assert report["feeds"]["a"]["hi"]["watts"] == pytest.approx(3.0625 / 3.1)
    assert report["feeds"]["a"]["hi"]["joules_per_media_s"] == pytest.approx(3.0625)  # one 1 s segment
    assert report["feeds"]["b"]["lo"]["joules_per_media_s"] is None  # no b/lo segment cut yet
    # everything attributed: this process's share of active energy plus its idle share
    assert report["attributed_w"] * 3.1 == pytest.approx(22 * 1.0 / 2.0 + 8 * 0.5)


def test_without_rapl_the_model_is_used_and_labelled(tmp_path: Path) -> None:
    host = Host()
    m = member(host, tmp_path / "no-powercap")
    a = m.feed("a", RUNGS, 30.0)
    a.pushed(0.2)
    host.advance(wall=1.0, host_cpu=1.0, process_cpu=0.8)
    hi, part, lo = a.stamp([seg("a", "hi", 0), "not a segment", seg("a", "lo", 0)])
    assert part == "not a segment"
    assert hi.energy.source == "model" == lo.energy.source
    # model: idle 4 J over 1 s; active 10 W / 2 CPUs x 1.0 CPU s = 5 J; this process 0.8 of it
    assert hi.energy.joules + lo.energy.joules == pytest.approx(5.0 * 0.8 + 4.0 * 0.5)
    assert hi.energy.joules / lo.energy.joules > 1  # hi costs more
    assert hi.energy.error_joules == pytest.approx(0.5 * hi.energy.joules)


def test_a_segment_cut_before_any_interval_carries_no_figure(tmp_path: Path) -> None:
    host = Host()
    m = MemberEnergy(CFG, idle_share=1.0, meter=EnergyMeter(PowerModel(4.0, 10.0, 0.5), None,
                     cpu=lambda: CpuTimes(host.host_cpu, 2), clock=lambda: host.t, cpus=2),
                     process_cpu=lambda: host.process_cpu, clock=lambda: host.t, min_interval_s=0.25)
    a = m.feed("a", RUNGS, 30.0)
    a.pushed(0.1)
    host.advance(wall=0.1, host_cpu=0.1, process_cpu=0.1)  # sooner than min_interval_s
    first, = a.stamp([seg("a", "hi", 0)])
    assert first.energy is None
    host.advance(wall=0.5, host_cpu=0.5, process_cpu=0.5)
    second, = a.stamp([seg("a", "hi", 1)])
    assert second.energy is not None and second.energy.joules > 0


def test_idle_share_is_checked() -> None:
    with pytest.raises(ValueError):
        MemberEnergy(CFG, idle_share=1.5)


LAVFI = "lavfi:testsrc2=size=320x240:rate=30,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"


def test_live_transcoder_segments_carry_model_joules_that_add_up_to_its_cpu_time(tmp_path: Path) -> None:
    """A real transcode, unpaced: every segment of every rung gets joules from the model (no
    powercap tree here), and together they are what the model makes of this process's CPU
    time and its idle share over the run."""
    power = PowerConfig(tdp_w=15.0, cpus=2, rapl_root=str(tmp_path / "none"))
    cfg = EnergyConfig(enabled=True, power=power, costs=CostsConfig(rung_cpu={"hi": 0.3, "lo": 0.1}))
    ladder = LadderConfig(rungs=RUNGS, audio_bitrate=64_000, preset="ultrafast")
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: 1_700_000_000.0)
    streams = src.open()
    wall0, cpu0 = time.monotonic(), time.process_time()
    m = MemberEnergy(cfg, idle_share=0.5, min_interval_s=0.0)
    tr = LiveTranscoder("feed", ladder, 1.0, 0.25, streams, energy=None)
    tr.energy = m.feed("feed", ladder.rungs, tr.fps)
    out: list[Part | Segment] = []
    pending = []
    try:
        for u in src.units():
            pending.append(u)
            if len(pending) >= 8:
                out += tr.push(pending)
                pending = []
            if u.time >= 6.0:
                break
    except SourceEnded:
        pass
    out += tr.push(pending)
    out += tr.flush()  # the last segments close the last interval
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    segments = [x for x in out if isinstance(x, Segment)]
    assert {s.rendition for s in segments} == {"hi", "lo"} and len(segments) >= 12
    assert all(s.energy is not None and s.energy.source == "model" and s.energy.joules > 0 for s in segments)
    assert all(s.energy.error_joules == pytest.approx(0.5 * s.energy.joules) for s in segments)
    total = sum(s.energy.joules for s in segments)
    model = PowerModel.from_config(power)
    # active: 10.5 W / 2 CPUs per CPU second of this process; idle: 4.5 W x 0.5 over the run
    expected = model.k_w / 2 * cpu + model.idle_w * 0.5 * wall
    assert total == pytest.approx(expected, rel=0.2)
    hi = sum(s.energy.joules for s in segments if s.rendition == "hi")
    lo = sum(s.energy.joules for s in segments if s.rendition == "lo")
    assert hi > lo
    report = m.report()
    assert report["source"] == "model"
    assert report["feeds"]["feed"]["hi"]["watts"] > report["feeds"]["feed"]["lo"]["watts"] > 0
    assert report["feeds"]["feed"]["hi"]["joules_per_media_s"] > 0


def test_segments_of_one_rung_cut_together_share_its_joules_by_duration(tmp_path: Path) -> None:
    host = Host()
    m = member(host, tmp_path / "no-powercap", idle_share=1.0)
    a = m.feed("a", RUNGS[1:], 30.0)  # one rung: it gets all of this process's CPU
    a.pushed(0.5)
    host.advance(wall=3.0, host_cpu=2.0, process_cpu=1.0)
    short = Segment("a", "lo", 7, 7.0, 0.5, T0, b"y")  # a flush's last, short segment
    first, last = a.stamp([seg("a", "lo", 6), short])
    whole = 10.0 / 2 * 1.0 + 4.0 * 3.0  # active 5 J, idle 12 J
    assert first.energy.joules == pytest.approx(whole * 1.0 / 1.5)
    assert last.energy.joules == pytest.approx(whole * 0.5 / 1.5)


def test_a_standby_member_reports_its_idle_share_and_overhead(tmp_path: Path) -> None:
    host = Host()
    m = member(host, tmp_path / "no-powercap", idle_share=0.5)
    host.advance(wall=10.0, host_cpu=4.0, process_cpu=0.1)
    r = m.report()
    assert r["feeds"] == {} and r["attributed_w"] == 0.0
    # 0.1 CPU s x 10 W / 2 CPUs over 10 s, and half of 4 W idle
    assert r["process_w"] == pytest.approx(0.05 + 2.0)
    assert r["process_cpu_per_s"] == pytest.approx(0.01)
