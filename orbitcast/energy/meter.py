"""The host's energy over an interval: RAPL joules where the counters are readable, else the
power model applied to the host's CPU time. Every interval says which (`source`) and how
far off it may be (`rel_error`)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .config import PowerConfig
from .cpu import DEFAULT_PROC_STAT, CpuTimes, read_proc_stat
from .model import PowerModel, PowerSample
from .rapl import RaplReader, RaplReading

Source = Literal["rapl", "model"]
# RAPL against wall meters: within a few per cent for the domain it covers (docs/energy.md).
RAPL_REL_ERROR = 0.05


@dataclass(frozen=True)
class IntervalEnergy:
    wall_s: float
    host_cpu_s: float
    cpus: int
    joules: float       # the whole host (the RAPL domain, or the model)
    idle_joules: float  # what the host draws idle over the interval (the model's idle_w)
    source: Source
    rel_error: float

    @property
    def active_joules(self) -> float:
        return max(self.joules - self.idle_joules, 0.0)

    @property
    def watts(self) -> float:
        return self.joules / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def utilisation(self) -> float:
        return self.host_cpu_s / (self.wall_s * self.cpus) if self.wall_s > 0 else 0.0


class EnergyMeter:
    """Call `sample()` periodically (seconds to a minute): each call returns the interval
    since the previous one. With RAPL, each interval is also kept as a calibration sample
    (`samples`), so that `calibrate()` can fit the model for the hours RAPL is not read."""

    def __init__(
        self,
        model: PowerModel,
        rapl: RaplReader | None = None,
        cpu: Callable[[], CpuTimes] = read_proc_stat,
        clock: Callable[[], float] = time.monotonic,
        cpus: int | None = None,
        keep_samples: int = 1000,
    ) -> None:
        self.model = model
        self.rapl = rapl if rapl is not None and rapl.available else None
        self._cpu = cpu
        self._clock = clock
        self._cpus = cpus
        self.samples: deque[PowerSample] = deque(maxlen=keep_samples)
        self._last: tuple[float, CpuTimes, RaplReading | None] = self._read()

    @classmethod
    def from_config(cls, cfg: PowerConfig, proc_stat: str | Path = DEFAULT_PROC_STAT) -> "EnergyMeter":
        return cls(PowerModel.from_config(cfg), RaplReader(cfg.rapl_root), cpu=lambda: read_proc_stat(proc_stat), cpus=cfg.cpus)

    @property
    def source(self) -> Source:
        return "rapl" if self.rapl is not None else "model"

    def _read(self) -> tuple[float, CpuTimes, RaplReading | None]:
        return self._clock(), self._cpu(), self.rapl.read() if self.rapl is not None else None

    def sample(self) -> IntervalEnergy:
        (t0, c0, r0), (t1, c1, r1) = self._last, self._read()
        self._last = (t1, c1, r1)
        wall, cpu_s, cpus = t1 - t0, max(c1.busy_s - c0.busy_s, 0.0), self._cpus or c1.cpus
        idle = self.model.idle_w * wall
        if self.rapl is not None and r0 is not None and r1 is not None:
            joules = self.rapl.joules_between(r0, r1)
            if wall > 0:
                self.samples.append(PowerSample(cpu_s / (wall * cpus), joules / wall))
            return IntervalEnergy(wall, cpu_s, cpus, joules, min(idle, joules), "rapl", RAPL_REL_ERROR)
        return IntervalEnergy(wall, cpu_s, cpus, self.model.joules(wall, cpu_s, cpus), idle, "model", self.model.rel_error)

    def calibrate(self) -> PowerModel:
        """Fit the model to the RAPL samples kept so far and use it from now on."""
        self.model = self.model.calibrated_against(list(self.samples))
        return self.model
