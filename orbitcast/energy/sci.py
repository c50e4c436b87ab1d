"""An SCI-like carbon figure per viewer-hour (Green Software Foundation's Software Carbon
Intensity: (E x I + M) per R, here R = one viewer-hour).

E is split by where the energy came from: solar-direct at intensity 0, the battery counted
with its round-trip losses (what it delivered divided by both efficiencies) at the intensity
of whatever charged it, the grid (or a generator) at the configured grid intensity. M is the
host's embodied carbon spread over its lifetime, for the hours counted. The figure is an
estimate with the error of its joules; it is never zero while anything was made or run.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SciConfig
from .errors import EnergyError

J_PER_KWH = 3.6e6
HOURS_PER_YEAR = 8766.0


@dataclass(frozen=True)
class EnergyMix:
    """Joules the load took from each supply over the counted time."""

    solar_direct_j: float = 0.0
    battery_j: float = 0.0  # delivered by the battery
    grid_j: float = 0.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    battery_grid_fraction: float = 0.0  # of the battery's charge, the part that came from the grid

    @property
    def battery_upstream_j(self) -> float:
        """What charging had to put in for what the battery delivered."""
        return self.battery_j / (self.charge_efficiency * self.discharge_efficiency)

    @property
    def total_j(self) -> float:
        return self.solar_direct_j + self.battery_upstream_j + self.grid_j


@dataclass(frozen=True)
class SciFigure:
    g_per_viewer_hour: float
    operational_g: float
    embodied_g: float
    energy_j: float        # with battery losses
    viewer_hours: float
    rel_error: float

    @property
    def error_g_per_viewer_hour(self) -> float:
        return self.operational_g * self.rel_error / self.viewer_hours


def sci_per_viewer_hour(mix: EnergyMix, viewer_hours: float, host_hours: float, cfg: SciConfig,
                        rel_error: float = 0.0) -> SciFigure:
    if viewer_hours <= 0:
        raise EnergyError("an SCI figure per viewer-hour needs viewer_hours > 0")
    if host_hours < 0:
        raise EnergyError("host_hours must be >= 0")
    grid_kwh = (mix.grid_j + mix.battery_upstream_j * mix.battery_grid_fraction) / J_PER_KWH
    operational = grid_kwh * cfg.grid_intensity_g_per_kwh
    embodied = cfg.embodied_kg * 1000.0 * host_hours / (cfg.lifetime_years * HOURS_PER_YEAR)
    return SciFigure((operational + embodied) / viewer_hours, operational, embodied, mix.total_j, viewer_hours, rel_error)
