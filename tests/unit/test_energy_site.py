"""The solar site: pvlib clear-sky PV per local hour for a fixed site and date, and the
energy-bucket battery."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

pvlib = pytest.importorskip("pvlib")

from orbitcast.energy.config import SiteConfig  # noqa: E402
from orbitcast.energy.errors import EnergyError  # noqa: E402
from orbitcast.energy.site import Battery, hour_starts, hourly_pv_w  # noqa: E402

DESERT = SiteConfig(latitude=32.22, longitude=-110.97, altitude_m=730, timezone="America/Phoenix",
                    kwp=1.0, tilt=30, azimuth=180, battery_wh=2000)
SOLSTICE = dt.date(2024, 6, 21)


def sun_times(site: SiteConfig, day: dt.date) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """Sunrise, sunset and transit from pvlib's SPA (another code path than the PV chain)."""
    t = pd.DatetimeIndex([pd.Timestamp(day, tz=site.timezone)])
    row = pvlib.solarposition.sun_rise_set_transit_spa(t, site.latitude, site.longitude).iloc[0]
    return tuple(row[k].to_pydatetime(warn=False) for k in ("sunrise", "sunset", "transit"))  # type: ignore[return-value]


def test_clear_sky_day_is_dark_at_night_bright_by_day_and_peaks_in_the_solar_noon_hour() -> None:
    pv = hourly_pv_w(DESERT, SOLSTICE)
    starts = hour_starts(DESERT, SOLSTICE)
    sunrise, sunset, transit = sun_times(DESERT, SOLSTICE)
    assert len(pv) == 24
    for start, watts in zip(starts, pv):
        end = start + dt.timedelta(hours=1)
        if end <= sunrise or start >= sunset:
            assert watts == 0.0, f"{start:%H:%M} is night"
        if start >= sunrise and end <= sunset:
            assert watts > 0.0, f"{start:%H:%M} is day"
    peak = max(range(24), key=lambda h: pv[h])
    assert starts[peak].hour == transit.hour  # a south-facing panel peaks around solar noon
    # 1 kWp under a clear desert sky, less the PVWatts losses and a warm cell: most of it.
    assert 600 < pv[peak] < 1000
    assert pv[peak - 2] < pv[peak] and pv[peak + 2] < pv[peak]


def test_clearness_scales_the_day_down() -> None:
    clear = sum(hourly_pv_w(DESERT, SOLSTICE))
    hazy = sum(hourly_pv_w(DESERT.model_copy(update={"clearness": 0.5}), SOLSTICE))
    assert 0.4 * clear < hazy < 0.6 * clear


def test_polar_night_makes_nothing_and_a_short_winter_day_little() -> None:
    tromso = SiteConfig(latitude=69.65, longitude=18.96, timezone="Europe/Oslo", kwp=1.0, tilt=60, battery_wh=1000)
    assert sum(hourly_pv_w(tromso, dt.date(2024, 12, 21))) == 0.0
    winter = sum(hourly_pv_w(tromso, dt.date(2024, 2, 15)))
    summer = sum(hourly_pv_w(tromso, dt.date(2024, 6, 21)))
    assert 0 < winter < summer / 2


def test_the_plan_hours_are_real_hours_across_a_clock_change() -> None:
    london = SiteConfig(latitude=51.5, longitude=-0.1, timezone="Europe/London", kwp=1.0, battery_wh=1000)
    starts = hour_starts(london, dt.date(2024, 3, 31))  # 01:00 GMT becomes 02:00 BST
    assert [s.hour for s in starts[:3]] == [0, 2, 3]
    utc = [s.astimezone(dt.timezone.utc) for s in starts]
    assert all(b - a == dt.timedelta(hours=1) for a, b in zip(utc, utc[1:]))


def test_battery_charges_with_losses_and_curtails_when_full() -> None:
    b = Battery(100.0, soc=0.5, charge_efficiency=0.9, discharge_efficiency=0.8)
    s = b.step(pv_w=30.0, load_w=10.0)  # 20 Wh surplus -> 18 Wh stored
    assert s.charged_wh == pytest.approx(18.0) and b.soc_wh == pytest.approx(68.0) and s.curtailed_wh == 0
    assert s.solar_direct_wh == pytest.approx(10.0)
    s = b.step(pv_w=60.0, load_w=10.0)  # room for 32 Wh: 50 Wh surplus takes 35.6 Wh of it
    assert b.soc == pytest.approx(1.0) and s.curtailed_wh == pytest.approx(50 - 32 / 0.9)


def test_battery_discharges_with_losses_and_says_what_it_could_not_serve() -> None:
    b = Battery(100.0, soc=0.2, charge_efficiency=0.9, discharge_efficiency=0.8)
    s = b.step(pv_w=0.0, load_w=8.0)  # 8 Wh to the load takes 10 Wh out
    assert s.discharged_wh == pytest.approx(10.0) and b.soc_wh == pytest.approx(10.0) and s.unserved_wh == 0
    s = b.step(pv_w=0.0, load_w=16.0)  # 10 Wh left serve 8 Wh of 16
    assert b.soc_wh == 0 and s.unserved_wh == pytest.approx(8.0)


def test_a_battery_needs_a_size_and_a_valid_charge() -> None:
    with pytest.raises(EnergyError):
        Battery(0.0, soc=0.5)
    with pytest.raises(EnergyError):
        Battery(10.0, soc=1.5)
