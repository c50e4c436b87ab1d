"""What `GET /api/energy` answers: the pool members' reports (accounting.py) put together per
feed and rung, an SCI-like figure per viewer-hour, and the solar site's plan for today.

The plan is computed at most once an hour (and when the site's local date changes), from the
configured state of charge at midnight: no charge controller is read yet (docs/energy.md).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from ..config import OrbitcastConfig
from .config import EnergyConfig
from .planner import LadderStep, Plan, PlanHour
from .sci import EnergyMix, sci_per_viewer_hour

PLAN_EVERY_S = 3600.0
WHAT_IS_COUNTED = ("the transcoder pool members: their share of the host's active energy by CPU time, "
                   "and of its idle power by the CPUs they reserve; delivery, gateway, storage and network "
                   "are not counted")


def combine(reports: Sequence[dict]) -> dict:
    """Per feed and rung, the members' figures added (a feed moved to another member appears
    on both for a while: its watts are the sum, its joules per media second too)."""
    feeds: dict[str, dict] = {}
    for r in reports:
        for feed, rungs in r.get("feeds", {}).items():
            f = feeds.setdefault(feed, {"watts": 0.0, "error_w": 0.0, "joules_per_media_s": None, "rungs": {}})
            for rung, x in rungs.items():
                y = f["rungs"].setdefault(rung, {"watts": 0.0, "error_w": 0.0, "joules_per_media_s": None, "segments": 0})
                y["watts"] += x["watts"]
                y["error_w"] += x["error_w"]
                y["segments"] += x["segments"]
                if x["joules_per_media_s"] is not None:
                    y["joules_per_media_s"] = (y["joules_per_media_s"] or 0.0) + x["joules_per_media_s"]
                f["watts"] += x["watts"]
                f["error_w"] += x["error_w"]
    for f in feeds.values():
        per = [y["joules_per_media_s"] for y in f["rungs"].values()]
        # a media second of the feed is a media second of every rung
        f["joules_per_media_s"] = sum(per) if per and all(p is not None for p in per) else None
    return feeds


def _source(reports: Sequence[dict]) -> str | None:
    sources = {r["source"] for r in reports if r.get("wall_s")}
    return None if not sources else sources.pop() if len(sources) == 1 else "mixed"


def plan_hour(plan: Plan, now: dt.datetime) -> PlanHour | None:
    for h in plan.hours:
        if h.start <= now < h.start + dt.timedelta(hours=1):
            return h
    return None


def _step_json(s: LadderStep) -> dict:
    return {"index": s.index, "action": s.action, "label": s.label, "rungs": list(s.rungs),
            "fast_rungs": list(s.fast_rungs), "faster_preset": s.faster_preset, "fps": s.fps, "members": s.members,
            "accept_new_feeds": s.accept_new_feeds, "load_w": round(s.load_w, 3)}


def plan_json(plan: Plan, now: dt.datetime) -> dict:
    current = plan_hour(plan, now)
    return {
        "date": plan.hours[0].start.date().isoformat(),
        "feasible": plan.feasible, "reserve": plan.reserve, "capacity_wh": plan.capacity_wh,
        "end_soc": plan.end_soc, "min_soc": round(plan.min_soc, 4),
        "current_hour": None if current is None else current.start.isoformat(),
        "current_step": None if current is None else _step_json(current.step),
        "steps": [_step_json(s) for s in plan.steps],
        "hours": [{"start": h.start.isoformat(), "pv_w": round(h.pv_w, 3), "load_w": round(h.load_w, 3),
                   "soc_start": round(h.soc_start, 4), "soc_end": round(h.soc_end, 4), "step": h.step.index,
                   "label": h.step.label, "below_reserve": h.below_reserve, "unserved_wh": round(h.unserved_wh, 3)}
                  for h in plan.hours],
    }


def energy_mix(joules: float, cfg: EnergyConfig, hour: PlanHour | None) -> EnergyMix:
    """Where `joules` came from: without a site, the grid; with one, in the proportions the
    plan gives the current hour (PV used as made, the battery, and what the battery could
    not serve, counted as grid)."""
    if cfg.site is None or hour is None:
        return EnergyMix(grid_j=joules)
    site = cfg.site
    load_wh = hour.load_w
    if load_wh <= 0:
        return EnergyMix(grid_j=joules)
    solar = min(hour.solar_direct_wh / load_wh, 1.0)
    grid = min(hour.unserved_wh / load_wh, 1.0 - solar)
    return EnergyMix(solar_direct_j=joules * solar, battery_j=joules * (1.0 - solar - grid), grid_j=joules * grid,
                     charge_efficiency=site.charge_efficiency, discharge_efficiency=site.discharge_efficiency)


def sci_json(watts: float, rel_error: float, cfg: EnergyConfig, viewers: int, hour: PlanHour | None) -> dict:
    """The SCI-like figure for one hour at `watts`: gCO2e per hour of running, and per
    viewer-hour when there are viewers."""
    mix = energy_mix(watts * 3600.0, cfg, hour)
    per_hour = sci_per_viewer_hour(mix, 1.0, 1.0, cfg.sci, rel_error)
    out = {
        "g_per_hour": per_hour.g_per_viewer_hour,
        "operational_g_per_hour": per_hour.operational_g,
        "embodied_g_per_hour": per_hour.embodied_g,
        "error_g_per_hour": per_hour.error_g_per_viewer_hour,
        "g_per_viewer_hour": None, "error_g_per_viewer_hour": None,
        "grid_intensity_g_per_kwh": cfg.sci.grid_intensity_g_per_kwh,
        "mix_j_per_hour": {"solar_direct": mix.solar_direct_j, "battery_delivered": mix.battery_j, "grid": mix.grid_j,
                           "battery_upstream": mix.battery_upstream_j},
        "counts": WHAT_IS_COUNTED,
    }
    if viewers > 0:
        fig = sci_per_viewer_hour(mix, float(viewers), 1.0, cfg.sci, rel_error)
        out.update(g_per_viewer_hour=fig.g_per_viewer_hour, error_g_per_viewer_hour=fig.error_g_per_viewer_hour)
    return out


def feed_sci(feed_w: float, feeds_w: float, rel_error: float, cfg: EnergyConfig, viewers: int | None,
             hour: PlanHour | None) -> dict:
    """One feed's SCI-like figure: its watts at the hour's mix, and the host's embodied carbon
    in the feed's share of the watts attributed to all feeds (`feeds_w`: the feeds' shares of
    the host add up to the whole host); per viewer-hour of its own viewers, when counted."""
    mix = energy_mix(feed_w * 3600.0, cfg, hour)
    share = feed_w / feeds_w if feeds_w > 0 else 0.0
    per_hour = sci_per_viewer_hour(mix, 1.0, share, cfg.sci, rel_error)
    out = {"g_per_hour": per_hour.g_per_viewer_hour, "error_g_per_hour": per_hour.error_g_per_viewer_hour,
           "viewers": viewers, "g_per_viewer_hour": None, "error_g_per_viewer_hour": None}
    if viewers:
        out.update(g_per_viewer_hour=per_hour.g_per_viewer_hour / viewers,
                   error_g_per_viewer_hour=per_hour.error_g_per_viewer_hour / viewers)
    return out


def energy_body(config: OrbitcastConfig, reports: Sequence[dict], *, viewers: int, viewers_counted: str,
                plan: Plan | None, plan_error: str | None, now: dt.datetime,
                feed_viewers: Mapping[str, int] | None = None) -> dict:
    """The /api/energy body. `feed_viewers`: the viewers counted per feed (None when the
    audience was stated for the whole system: it is not split by feed)."""
    cfg = config.energy
    measured = [r for r in reports if r.get("wall_s")]
    watts = sum(r["process_w"] for r in measured)
    rel_error = max((r["rel_error"] for r in measured), default=cfg.power.error)
    hour = plan_hour(plan, now.astimezone(plan.hours[0].start.tzinfo)) if plan is not None else None
    feeds = combine(measured)
    feeds_w = sum(f["watts"] for f in feeds.values())
    for name, f in feeds.items():
        counted = None if feed_viewers is None else feed_viewers.get(name, 0)
        f["sci"] = feed_sci(f["watts"], feeds_w, rel_error, cfg, counted, hour)
    return {
        "enabled": cfg.enabled,
        "source": _source(reports),
        "rel_error": rel_error,
        "window_s": max((r["window_s"] for r in reports), default=None),
        "transcoding_w": watts,
        "error_w": watts * rel_error,
        "feeds": feeds,
        "members": [{k: r.get(k) for k in ("member", "source", "host_w", "process_w", "attributed_w", "utilisation",
                                           "process_cpu_per_s", "idle_share", "rel_error", "model", "wall_s", "errors")}
                    for r in reports],
        "viewers": {"count": viewers, "counted": viewers_counted},
        "sci": sci_json(watts, rel_error, cfg, viewers, hour),
        "plan": plan_json(plan, now.astimezone(plan.hours[0].start.tzinfo)) if plan is not None else None,
        "plan_error": plan_error,
    }


class PlanClock:
    """Today's plan of the site, made again every `every_s` and when the local date changes.
    `get()` may take a second (pvlib): call it off an event loop."""

    def __init__(self, config: OrbitcastConfig, make: Callable[[OrbitcastConfig, dt.date], Plan] | None = None,
                 every_s: float = PLAN_EVERY_S, clock: Callable[[], dt.datetime] | None = None) -> None:
        if config.energy.site is None:
            raise ValueError("PlanClock needs energy.site")
        self.config = config
        self.zone = ZoneInfo(config.energy.site.timezone)
        self._make = make
        self._every = dt.timedelta(seconds=every_s)
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self._lock = threading.Lock()
        self._plan: Plan | None = None
        self._made: tuple[dt.date, dt.datetime] | None = None

    def get(self) -> Plan:
        now = self._clock().astimezone(self.zone)
        with self._lock:
            if self._plan is None or self._made is None or self._made[0] != now.date() or now - self._made[1] >= self._every:
                make = self._make
                if make is None:
                    from .planner import plan_for_config as make  # pvlib: loaded on first use
                self._plan = make(self.config, now.date())
                self._made = (now.date(), now)
            return self._plan
