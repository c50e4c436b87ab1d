"""A solar site: hourly PV power from pvlib under a clear sky, and an energy-bucket battery.

PV chain (pvlib): solar position -> Ineichen clear-sky GHI/DNI/DHI (Linke turbidity from
pvlib's monthly climatology unless configured) scaled by the site's clearness factor ->
plane-of-array irradiance (Hay-Davies) -> SAPM cell temperature -> PVWatts DC with the
system losses -> PVWatts inverter. Evaluated every 10 minutes and averaged per local hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .config import SiteConfig
from .errors import EnergyError

STEP_MINUTES = 10
GAMMA_PDC = -0.004  # PVWatts' default power temperature coefficient of crystalline silicon, 1/C


def hour_starts(site: SiteConfig, day: dt.date) -> list[dt.datetime]:
    """The 24 hours of a plan, from local midnight (an hour is 60 minutes of real time,
    also across a daylight-saving change)."""
    tz = ZoneInfo(site.timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)
    return [(start + dt.timedelta(hours=h)).astimezone(tz) for h in range(24)]


def hourly_pv_w(site: SiteConfig, day: dt.date) -> list[float]:
    """Mean AC power of the panels in each of the 24 hours from local midnight, watts."""
    try:
        import pandas as pd
        import pvlib
    except ImportError:
        raise EnergyError("the solar site model needs pvlib: pip install 'orbitcast[energy]'") from None
    starts = hour_starts(site, day)
    per_hour = 60 // STEP_MINUTES
    t0 = pd.Timestamp(starts[0]).tz_convert("UTC")
    # Mid-points of 10-minute steps: an hour's mean, not its first instant.
    times = pd.date_range(t0 + pd.Timedelta(minutes=STEP_MINUTES / 2), periods=24 * per_hour,
                          freq=f"{STEP_MINUTES}min", tz="UTC")
    loc = pvlib.location.Location(site.latitude, site.longitude, tz="UTC", altitude=site.altitude_m)
    solpos = loc.get_solarposition(times)
    kwargs = {} if site.linke_turbidity is None else {"linke_turbidity": site.linke_turbidity}
    sky = loc.get_clearsky(times, model="ineichen", solar_position=solpos, **kwargs) * site.clearness
    poa = pvlib.irradiance.get_total_irradiance(
        site.tilt, site.azimuth, solpos["apparent_zenith"], solpos["azimuth"],
        sky["dni"], sky["ghi"], sky["dhi"], dni_extra=pvlib.irradiance.get_extra_radiation(times),
        model="haydavies",
    )
    poa_global = poa["poa_global"].fillna(0.0).clip(lower=0.0)
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"]
    cell = pvlib.temperature.sapm_cell(poa_global, site.temp_air_c, site.wind_speed, **params)
    pdc0 = site.kwp * 1000.0
    dc = pvlib.pvsystem.pvwatts_dc(poa_global, cell, pdc0, GAMMA_PDC) * (1 - site.losses_percent / 100)
    ac = pvlib.inverter.pvwatts(dc, pdc0, eta_inv_nom=site.inverter_efficiency).fillna(0.0).clip(lower=0.0)
    return [float(x) for x in ac.to_numpy().reshape(24, per_hour).mean(axis=1)]


@dataclass(frozen=True)
class BatteryStep:
    soc_wh: float          # at the end of the step
    charged_wh: float      # into the battery (after charge losses)
    discharged_wh: float   # out of the battery (before discharge losses reach the load)
    curtailed_wh: float    # PV the full battery could not take
    unserved_wh: float     # load the empty battery could not serve (a grid or a blackout)
    solar_direct_wh: float # load served by PV as it was made


class Battery:
    """An energy bucket: PV in, load out, charge and discharge efficiencies, 0..capacity."""

    def __init__(self, capacity_wh: float, soc: float, charge_efficiency: float = 0.95,
                 discharge_efficiency: float = 0.95) -> None:
        if capacity_wh <= 0 or not 0 <= soc <= 1:
            raise EnergyError(f"a battery needs capacity > 0 and a state of charge within 0..1, got {capacity_wh}, {soc}")
        self.capacity_wh = capacity_wh
        self.soc_wh = capacity_wh * soc
        self.charge_efficiency = charge_efficiency
        self.discharge_efficiency = discharge_efficiency

    @classmethod
    def of(cls, site: SiteConfig, soc: float | None = None) -> "Battery":
        return cls(site.battery_wh, site.initial_soc if soc is None else soc, site.charge_efficiency,
                   site.discharge_efficiency)

    @property
    def soc(self) -> float:
        return self.soc_wh / self.capacity_wh

    def step(self, pv_w: float, load_w: float, hours: float = 1.0) -> BatteryStep:
        pv_wh, load_wh = pv_w * hours, load_w * hours
        direct = min(pv_wh, load_wh)
        if pv_wh >= load_wh:
            room = self.capacity_wh - self.soc_wh
            surplus = pv_wh - load_wh
            if surplus * self.charge_efficiency <= room:
                charged, curtailed = surplus * self.charge_efficiency, 0.0
            else:  # the battery fills up: the rest of the PV is not taken
                charged, curtailed = room, surplus - room / self.charge_efficiency
            self.soc_wh += charged
            return BatteryStep(self.soc_wh, charged, 0.0, curtailed, 0.0, direct)
        need = (load_wh - pv_wh) / self.discharge_efficiency
        taken = min(need, self.soc_wh)
        self.soc_wh -= taken
        unserved = (need - taken) * self.discharge_efficiency
        return BatteryStep(self.soc_wh, 0.0, taken, 0.0, unserved, direct)
