"""Energy of an interval divided among the work done in it.

Active energy (above idle) goes to each work item by its share of the host's CPU time, as
Kepler and Scaphandre divide package energy among processes; idle energy goes by wall time,
as the SCI specification asks for shared resources. A work item is whatever the caller
accounts: a part or segment of one rung, a feed, a pool member.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import EnergyError
from .meter import IntervalEnergy, Source


@dataclass(frozen=True)
class WorkItem:
    key: str        # e.g. "iss/720p/1234"
    cpu_s: float    # CPU time its work used in the interval
    wall_s: float   # wall time it occupied in the interval (its media duration for a live segment)


@dataclass(frozen=True)
class Attributed:
    key: str
    joules: float
    active_joules: float
    idle_joules: float
    energy_source: Source
    error_joules: float  # one standard error, from the interval's relative error


def attribute(interval: IntervalEnergy, items: Sequence[WorkItem], idle_share: float = 1.0) -> list[Attributed]:
    """Each item's joules in `interval`.

    Active joules go by `cpu_s` over the host's CPU time (or over the items' own sum where
    they account for more than the host counted, as when the two were read at different
    moments). `idle_share` is the part of the host's idle power these items carry (1.0: a
    host that exists for them; 0.5: a host shared half-and-half with other work); it is split
    among them by wall time.
    """
    if not 0 <= idle_share <= 1:
        raise EnergyError(f"idle_share must be within 0..1, got {idle_share}")
    for it in items:
        if it.cpu_s < 0 or it.wall_s < 0:
            raise EnergyError(f"{it.key}: negative CPU or wall time")
    cpu_total = max(interval.host_cpu_s, sum(it.cpu_s for it in items))
    wall_total = sum(it.wall_s for it in items)
    out = []
    for it in items:
        active = interval.active_joules * it.cpu_s / cpu_total if cpu_total > 0 else 0.0
        idle = interval.idle_joules * idle_share * it.wall_s / wall_total if wall_total > 0 else 0.0
        joules = active + idle
        out.append(Attributed(it.key, joules, active, idle, interval.source, joules * interval.rel_error))
    return out


def split_cpu(cpu_s: float, weights: Mapping[str, float]) -> dict[str, float]:
    """One process's CPU time divided by relative costs (e.g. `LadderCosts.weights`).

    x264 encodes on threads of its own, so the time one rung's encoder used cannot be read
    from the calling thread: a transcoder's CPU time is split by the measured cost of each
    rung instead.
    """
    total = sum(weights.values())
    if total <= 0:
        raise EnergyError("weights must add up to more than 0")
    return {k: cpu_s * w / total for k, w in weights.items()}
