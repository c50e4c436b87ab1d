"""The SCI-like figure per viewer-hour: solar-direct energy at intensity 0, battery losses
counted, embodied carbon always there."""

from __future__ import annotations

import pytest

from orbitcast.energy.config import SciConfig
from orbitcast.energy.errors import EnergyError
from orbitcast.energy.sci import J_PER_KWH, EnergyMix, sci_per_viewer_hour

CFG = SciConfig(grid_intensity_g_per_kwh=400.0, embodied_kg=350.0, lifetime_years=4.0)


def test_solar_direct_energy_adds_no_operational_carbon_but_the_figure_is_not_zero() -> None:
    fig = sci_per_viewer_hour(EnergyMix(solar_direct_j=J_PER_KWH), viewer_hours=10, host_hours=1, cfg=CFG)
    assert fig.operational_g == 0.0
    assert fig.embodied_g == pytest.approx(350_000 / (4 * 8766))
    assert fig.g_per_viewer_hour == pytest.approx(fig.embodied_g / 10) and fig.g_per_viewer_hour > 0


def test_grid_energy_counts_at_the_grid_intensity() -> None:
    fig = sci_per_viewer_hour(EnergyMix(grid_j=J_PER_KWH / 2), viewer_hours=4, host_hours=0, cfg=CFG, rel_error=0.5)
    assert fig.operational_g == pytest.approx(200.0) and fig.g_per_viewer_hour == pytest.approx(50.0)
    assert fig.error_g_per_viewer_hour == pytest.approx(25.0)


def test_battery_losses_are_counted() -> None:
    mix = EnergyMix(battery_j=J_PER_KWH, charge_efficiency=0.9, discharge_efficiency=0.8, battery_grid_fraction=1.0)
    fig = sci_per_viewer_hour(mix, viewer_hours=1, host_hours=0, cfg=CFG)
    assert mix.battery_upstream_j == pytest.approx(J_PER_KWH / 0.72) and fig.energy_j == pytest.approx(J_PER_KWH / 0.72)
    assert fig.operational_g == pytest.approx(400.0 / 0.72)
    solar_charged = sci_per_viewer_hour(EnergyMix(battery_j=J_PER_KWH), viewer_hours=1, host_hours=0, cfg=CFG)
    assert solar_charged.operational_g == 0.0 and solar_charged.energy_j > J_PER_KWH


def test_no_viewers_is_refused() -> None:
    with pytest.raises(EnergyError, match="viewer_hours"):
        sci_per_viewer_hour(EnergyMix(), viewer_hours=0, host_hours=1, cfg=CFG)
