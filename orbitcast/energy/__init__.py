"""orbitcast.energy: joules per unit of work and a solar budget for the ladder (no Ray here).

Accounting: `EnergyMeter.from_config(cfg.power).sample()` gives an `IntervalEnergy` (RAPL
where readable, else the power model); `attribute(interval, [WorkItem, ...])` divides it
among segments or rungs; `sci_per_viewer_hour` makes the carbon figure.
Budget: `plan_for_config(config, date)` (site.py needs pvlib, the `energy` extra) gives a
`Plan`: per hour a `LadderStep` (rungs kept, presets, fps, pool cap) and the battery's state;
`simulate_for_config` runs it hour by hour on a compressed site clock (a day in minutes).

Names are loaded on first use: orbitcast.config imports `energy.config` while it is itself
being imported, and the planner imports orbitcast.config.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ACTIONS": "planner", "Attributed": "attribution", "CostsConfig": "config", "EnergyConfig": "config",
    "EnergyError": "errors", "EnergyMeter": "meter", "EnergyMix": "sci", "IntervalEnergy": "meter",
    "LadderCosts": "costs", "LadderStep": "planner", "Plan": "planner", "PlanHour": "planner",
    "PowerConfig": "config", "PowerModel": "model", "PowerSample": "model", "RaplReader": "rapl",
    "SciConfig": "config", "SciFigure": "sci", "SiteConfig": "config", "WorkItem": "attribution",
    "attribute": "attribution", "counter_delta": "rapl", "ladder_steps": "planner", "plan_day": "planner",
    "plan_for_config": "planner", "sci_per_viewer_hour": "sci", "split_cpu": "attribution",
    "Simulation": "simulate", "SiteClock": "simulate", "run_day": "simulate", "simulate_for_config": "simulate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
