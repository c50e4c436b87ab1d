"""The power model `P = idle_w + k_w * u`, u the host's CPU utilisation (0..1 over all its
logical CPUs).

Seeded from the CPU's TDP when nothing better is known (CodeCarbon's fallback, which takes
half the TDP whatever the load; here idle is a fraction of the TDP and the rest scales with
load), and calibrated against RAPL samples by least squares where the counters are readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import PowerConfig
from .errors import EnergyError


@dataclass(frozen=True)
class PowerSample:
    """One measured interval: the host's utilisation and its mean power (RAPL)."""

    utilisation: float
    watts: float


@dataclass(frozen=True)
class PowerModel:
    idle_w: float
    k_w: float
    rel_error: float  # relative error of joules from this model
    calibrated: bool = False

    @classmethod
    def from_tdp(cls, tdp_w: float, idle_fraction: float = 0.3, rel_error: float = 0.5) -> "PowerModel":
        if tdp_w <= 0 or not 0 <= idle_fraction < 1:
            raise EnergyError(f"a TDP seed needs tdp_w > 0 and 0 <= idle_fraction < 1, got {tdp_w}, {idle_fraction}")
        return cls(idle_w=tdp_w * idle_fraction, k_w=tdp_w * (1 - idle_fraction), rel_error=rel_error)

    @classmethod
    def from_config(cls, cfg: PowerConfig) -> "PowerModel":
        seed = cls.from_tdp(cfg.tdp_w, cfg.idle_fraction, cfg.error)
        idle = cfg.idle_w if cfg.idle_w is not None else seed.idle_w
        k = cfg.k_w if cfg.k_w is not None else seed.k_w
        return cls(idle, k, cfg.error, calibrated=cfg.idle_w is not None and cfg.k_w is not None)

    def watts(self, utilisation: float) -> float:
        return self.idle_w + self.k_w * min(max(utilisation, 0.0), 1.0)

    def joules_per_cpu_s(self, cpus: int) -> float:
        """Active joules of one CPU second on a host of `cpus` logical CPUs."""
        return self.k_w / cpus

    def joules(self, wall_s: float, cpu_s: float, cpus: int) -> float:
        return self.idle_w * wall_s + self.joules_per_cpu_s(cpus) * min(cpu_s, wall_s * cpus)

    def calibrated_against(self, samples: Sequence[PowerSample]) -> "PowerModel":
        """Least-squares fit of idle_w and k_w to measured samples.

        Needs samples over a spread of utilisation, else the slope is noise. The error of the
        result is the fit's RMS residual relative to the mean measured power.
        """
        if len(samples) < 3:
            raise EnergyError(f"calibration needs at least 3 samples, got {len(samples)}")
        u = np.array([s.utilisation for s in samples], dtype=float)
        w = np.array([s.watts for s in samples], dtype=float)
        if float(u.max() - u.min()) < 0.1:
            raise EnergyError(f"calibration needs utilisation spread over 0.1 or more, got {u.min():.2f}..{u.max():.2f}")
        k, idle = np.polyfit(u, w, 1)
        if idle < 0:  # a fit through the origin rather than a negative idle power
            idle, k = 0.0, float(np.dot(u, w) / np.dot(u, u))
        if k < 0:
            raise EnergyError("measured power falls as utilisation rises: the samples are not of one host")
        rmse = float(np.sqrt(np.mean((idle + k * u - w) ** 2)))
        return PowerModel(float(idle), float(k), max(rmse / float(w.mean()), 0.01), calibrated=True)
