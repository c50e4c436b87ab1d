"""RAPL energy counters through the Linux powercap tree (`/sys/class/powercap`).

Each zone (`intel-rapl:0`, `intel-rapl:0:2`, AMD's `amd-rapl:0` where a kernel names them so)
has `name`, `energy_uj` (a counter that wraps at `max_energy_range_uj`) and subzones. What is
counted: the `psys` zone where the platform has one (it covers the whole SoC and more), else
every top-level `package-N` zone summed. DRAM and the rest of the machine are outside a
package zone; docs/energy.md says what that leaves out.

The root is a parameter so tests can lay out a tree of their own. Since 2020 (CVE-2020-8694)
`energy_uj` is readable by root only on most distributions: a tree whose counters cannot be
read is `available == False`, and the caller falls back to the power model.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/sys/class/powercap")
# Top-level zones only: a subzone (intel-rapl:0:1) lies inside its package's count.
_TOP_ZONE = re.compile(r"(intel|amd)-rapl:\d+")


def counter_delta(before: int, after: int, max_range: int) -> int:
    """Microjoules between two readings of one counter that wraps at `max_range`.

    A counter read less often than it wraps (at 100 W a 262 kJ range lasts 44 minutes)
    loses whole turns: nothing in the counter can tell.
    """
    if after >= before:
        return after - before
    return max_range - before + after


@dataclass(frozen=True)
class RaplZone:
    name: str  # as the kernel names it: package-0, psys, dram, core
    path: Path
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


@dataclass(frozen=True)
class RaplReading:
    monotonic: float
    uj: tuple[int, ...]  # one per counted zone, in the reader's zone order


def _zone(path: Path) -> RaplZone | None:
    try:
        zone = RaplZone(
            name=(path / "name").read_text().strip(),
            path=path,
            max_range_uj=int((path / "max_energy_range_uj").read_text().strip()),
        )
        zone.read_uj()
    except (OSError, ValueError):
        return None  # unreadable (permissions) or not a zone with a counter
    return zone


class RaplReader:
    """The counted zones of one machine; `read()` and `joules_between()` give energy."""

    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        found: list[RaplZone] = []
        if self.root.is_dir():
            for p in sorted(self.root.iterdir()):
                if _TOP_ZONE.fullmatch(p.name) and (z := _zone(p)) is not None:
                    found.append(z)
        psys = [z for z in found if z.name == "psys"]
        self.zones: tuple[RaplZone, ...] = tuple(psys or [z for z in found if z.name.startswith("package")])

    @property
    def available(self) -> bool:
        return bool(self.zones)

    @property
    def domain(self) -> str:
        """What the joules cover: 'psys', 'package' or '' (nothing readable)."""
        if not self.zones:
            return ""
        return "psys" if self.zones[0].name == "psys" else "package"

    def read(self) -> RaplReading:
        if not self.zones:
            raise OSError(f"no readable RAPL zone under {self.root}")
        return RaplReading(time.monotonic(), tuple(z.read_uj() for z in self.zones))

    def joules_between(self, before: RaplReading, after: RaplReading) -> float:
        return sum(counter_delta(b, a, z.max_range_uj)
                   for z, b, a in zip(self.zones, before.uj, after.uj, strict=True)) / 1e6

    def joules_since(self, before: RaplReading) -> float:
        return self.joules_between(before, self.read())
