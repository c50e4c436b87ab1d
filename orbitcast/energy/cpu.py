"""Host CPU time from /proc/stat: what the power model turns into watts and what active
energy is divided by (Kepler and Scaphandre do the same with package energy).

The path is a parameter so tests can write a file of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuTimes:
    busy_s: float  # user, nice, system, irq, softirq: steal is another guest's work
    cpus: int      # logical CPUs listed


def read_proc_stat(path: str | Path = DEFAULT_PROC_STAT, ticks_per_s: int | None = None) -> CpuTimes:
    hz = ticks_per_s or os.sysconf("SC_CLK_TCK")
    busy: float | None = None
    cpus = 0
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "cpu":
            user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
            busy = (user + nice + system + irq + softirq) / hz
        elif fields[0].startswith("cpu") and fields[0][3:].isdigit():
            cpus += 1
    if busy is None or cpus == 0:
        raise ValueError(f"{path}: no cpu lines")
    return CpuTimes(busy, cpus)
