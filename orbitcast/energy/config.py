"""Configuration of energy accounting and the solar budget (`energy:` in orbitcast.yaml).

Off by default. Every figure has a default that says where it comes from; the ones that
describe a machine or a site are to be replaced with the user's own (docs/energy.md).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class _Strict(BaseModel):
    # No NaN or infinity: one would flow through every joule and watt of a plan.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PowerConfig(_Strict):
    """The host's power model `P = idle_w + k_w * utilisation` (utilisation 0..1 over all its
    logical CPUs). Seeded from the CPU's TDP as CodeCarbon does when it cannot measure;
    `idle_w`/`k_w` from a calibration against RAPL replace the seed."""

    tdp_w: float = Field(default=15.0, gt=0, le=2000, description="thermal design power of the host's CPU package(s), watts")
    idle_fraction: float = Field(default=0.3, ge=0, lt=1, description="idle power as a fraction of the TDP (seed)")
    idle_w: float | None = Field(default=None, ge=0, description="calibrated idle watts; default idle_fraction x tdp_w")
    k_w: float | None = Field(default=None, ge=0, description="calibrated watts at full utilisation above idle; default tdp_w - idle")
    error: float = Field(default=0.5, gt=0, le=10, description="relative error of modelled joules (the TDP seed is a guess)")
    cpus: int | None = Field(default=None, ge=1, description="logical CPUs utilisation is counted over; default: this host's")
    rapl_root: str = Field(default="/sys/class/powercap", description="the powercap tree; RAPL joules where it is readable")


class SciConfig(_Strict):
    """What the SCI-like figure per viewer-hour counts besides joules."""

    grid_intensity_g_per_kwh: float = Field(
        default=475.0, ge=0, le=2000,
        description="gCO2e per kWh of energy that is not solar-direct (the world average as a placeholder: set your grid's)")
    embodied_kg: float = Field(default=300.0, ge=0, description="the host's embodied kgCO2e (its maker's LCA figure)")
    lifetime_years: float = Field(default=4.0, gt=0, le=30, description="years the embodied carbon is spread over")


class CostsConfig(_Strict):
    """What transcoding costs, in CPU seconds per media second, as bench/bench_energy.py
    measures it (defaults: its run on the 2-core reference machine, docs/energy.md)."""

    feed_cpu: float = Field(default=0.039, ge=0, description="per feed, whatever its rungs: source, decode, audio")
    rung_cpu: dict[str, float] = Field(
        default_factory=lambda: {"720p": 0.206, "480p": 0.153, "360p": 0.103},
        description="per rung name at the ladder's preset and the source frame rate; rungs not listed: cpu_per_mpixel",
    )
    cpu_per_mpixel: float = Field(default=0.0098, ge=0, description="CPU seconds per million output pixels, for unlisted rungs")
    faster_preset: str = Field(default="ultrafast", description="the x264 preset low rungs switch to")
    faster_preset_factor: float = Field(default=0.76, gt=0, le=1, description="CPU a rung keeps on the faster preset (as the pipeline applies it: the base preset's stream headers kept)")
    reduced_fps: int = Field(default=15, gt=0, le=120, description="the frame rate of the 'lower the frame rate' step")
    reduced_fps_factor: float = Field(default=0.57, gt=0, le=1, description="CPU the rungs keep at reduced_fps")
    member_cpu: float = Field(default=0.01, ge=0, description="an idle (standby) transcoder pool member")

    @field_validator("rung_cpu")
    @classmethod
    def _rung_cpu(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, x in v.items() if not 0 <= x < 1000]  # NaN too
        if bad:
            raise ValueError(f"CPU cost of {bad[:5]} must be 0 or more (CPU seconds per media second)")
        return v


class SiteConfig(_Strict):
    """A solar site: panels, a battery, and the load besides the pipeline."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude_m: float = Field(default=0.0, ge=-500, le=9000)
    timezone: str = Field(default="UTC", description="IANA name; the plan's hours are local hours")
    kwp: float = Field(gt=0, le=10_000, description="panel peak power, kW (DC at 1000 W/m2, 25 C)")
    tilt: float = Field(default=30.0, ge=0, le=90, description="panel tilt from horizontal, degrees")
    azimuth: float = Field(default=180.0, ge=0, lt=360, description="panel facing, degrees from north (180: south)")
    battery_wh: float = Field(gt=0, description="usable battery capacity, Wh")
    charge_efficiency: float = Field(default=0.95, gt=0, le=1)
    discharge_efficiency: float = Field(default=0.95, gt=0, le=1)
    night_reserve: float = Field(default=0.2, ge=0, lt=1, description="fraction of the battery the plan never uses")
    initial_soc: float = Field(default=0.6, ge=0, le=1, description="state of charge at the start of a plan, 0..1")
    end_soc: float | Literal["start"] | None = Field(
        default=None,
        description="charge a plan must leave after 24 h: 0..1, 'start' (what it started with: a site that "
                    "lasts day after day), or null (only the reserve)")
    clearness: float = Field(default=1.0, ge=0, le=1, description="fraction of clear-sky irradiance expected (1: clear sky)")
    linke_turbidity: float | None = Field(default=None, gt=0, le=10, description="default: pvlib's monthly climatology")
    losses_percent: float = Field(default=14.08, ge=0, lt=100, description="PVWatts system losses (soiling, wiring, ...)")
    inverter_efficiency: float = Field(default=0.96, gt=0, le=1)
    temp_air_c: float = Field(default=20.0, ge=-60, le=60, description="air temperature for the cell temperature model")
    wind_speed: float = Field(default=1.0, ge=0, le=60, description="m/s, for the cell temperature model")
    base_load_w: float = Field(default=0.0, ge=0, description="the site's load besides the host: radio, router, ...")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        # Membership rather than ZoneInfo(v): a name is a path into the tz database, and a
        # directory or an over-long name raises OSError there.
        if v not in _zones():
            raise ValueError(f"unknown time zone {v[:64]!r} (an IANA name such as Europe/Oslo)")
        return v

    @model_validator(mode="after")
    def _soc(self) -> "SiteConfig":
        if self.initial_soc < self.night_reserve:
            raise ValueError(f"initial_soc ({self.initial_soc}) is below night_reserve ({self.night_reserve})")
        if isinstance(self.end_soc, float) and not 0 <= self.end_soc <= 1:
            raise ValueError(f"end_soc must be within 0..1, got {self.end_soc}")
        return self


class FollowPlanConfig(_Strict):
    """The live ladder following the site's plan, re-planned every site hour (docs/energy.md)."""

    enabled: bool = Field(default=False, description="transcoders make the rungs and frame rate the plan's hour says")
    simulate_date: dt.date | None = Field(
        default=None, description="a compressed day: the site clock starts at this local date's start_hour and runs a "
                                  "day in `minutes`; none: the site's real time")
    start_hour: int = Field(default=0, ge=0, le=23, description="local hour a simulated day starts at")
    minutes: float = Field(default=2.0, gt=0, le=1440, description="wall minutes a simulated day of 24 h takes")
    poll_s: float = Field(default=0.5, gt=0, le=60, description="how often each transcoder asks for the hour's step")


class EnergyConfig(_Strict):
    enabled: bool = Field(default=False, description="joules on every segment's catalog row, and /api/energy")
    power: PowerConfig = PowerConfig()
    sci: SciConfig = SciConfig()
    costs: CostsConfig = CostsConfig()
    site: SiteConfig | None = Field(default=None, description="a solar site; none: no budget, the ladder stays whole")
    follow_plan: FollowPlanConfig = FollowPlanConfig()

    @model_validator(mode="after")
    def _follow(self) -> "EnergyConfig":
        if self.follow_plan.enabled and self.site is None:
            raise ValueError("energy.follow_plan needs energy.site: the plan is the site's")
        return self
