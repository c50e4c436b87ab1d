"""Energy in /metrics (docs/energy.md, docs/metrics.md), from what `/api/energy` already asks
the transcoder pool for, so a scrape costs no more than that route (its cache included).

Two kinds of figures:

- Counters, from each pool member's running totals (`MemberEnergy.report()["totals"]`):
  joules per feed, rung and source, media seconds stamped, the member process's joules. They
  go to the metrics hub under `transcoder/member-N` with the accountant's own instance id, so
  a member that restarts is retired there and the sums never fall (hub.py).
- Gauges, from the `/api/energy` body at scrape time: recent watts and joules per media
  second per feed and rung, the pool's power, the SCI-like figure, and with a solar site the
  current hour of today's plan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from .store import MetricStore

COMPONENT = "transcoder"


def member_snapshot(report: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """One member's totals as a snapshot for the hub; None for a report without them (a
    member of an older version, or accounting off)."""
    totals, instance = report.get("totals"), report.get("instance")
    if not isinstance(totals, Mapping) or not instance:
        return None
    store = MetricStore()
    joules = store.counter("orbitcast_energy_joules_total",
                           "Joules attributed to the feed's rung since its transcoder member started: its share of "
                           "the host's active energy by CPU time plus its idle share (source: rapl or model)",
                           ("feed", "rendition", "source"))
    media = store.counter("orbitcast_energy_media_seconds_total",
                          "Media seconds of the rung's segments that carry joules (divide the rate of "
                          "orbitcast_energy_joules_total by this one's for joules per media second)", ("feed", "rendition"))
    process = store.counter("orbitcast_energy_transcoder_joules_total",
                            "Joules of the transcoder member processes: their share of the host's active energy by "
                            "CPU time plus their idle share (a standby member's included)", ("source",))
    for feed, rung, source, value in totals.get("joules", ()):
        joules.set_total(value, str(feed), str(rung), str(source))
    for feed, rung, seconds, _segments in totals.get("media", ()):
        media.set_total(seconds, str(feed), str(rung))
    for source, value in dict(totals.get("process_joules", {})).items():
        process.set_total(value, str(source))
    snapshot = store.snapshot(now)
    snapshot["instance"] = str(instance)
    return snapshot


def member_snapshots(reports: Sequence[Mapping[str, Any]], now: float) -> list[tuple[str, dict[str, Any]]]:
    """(hub source name, snapshot) for every member report that has totals."""
    out = []
    for r in reports:
        snap = member_snapshot(r, now)
        if snap is not None:
            out.append((f"{COMPONENT}/member-{r.get('member', 0)}", snap))
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def energy_families(body: Mapping[str, Any] | None, now: float) -> dict[str, dict[str, Any]]:
    """Gauges from an /api/energy body (`orbitcast.energy.summary.energy_body`): nothing
    when accounting is off and there is no site."""
    if not body:
        return {}
    store = MetricStore()
    if body.get("enabled"):
        _accounting(store, body)
    if body.get("plan") is not None or body.get("plan_error") is not None:
        _plan(store, body.get("plan"), now)
    ladder = body.get("ladder") or {}
    if ladder.get("following"):
        _ladder(store, ladder)
    return store.snapshot(now)["families"]


def _ladder(store: MetricStore, ladder: Mapping[str, Any]) -> None:
    """The ladder the live pipeline follows now (energy.follow_plan, the governor's status)."""
    up = store.gauge("orbitcast_energy_ladder_up", "1 when the governor of the live ladder answered (0: see "
                                                   "ladder.error in /api/energy)")
    step = (ladder.get("step") or {}) if not ladder.get("error") else {}
    up.set(1.0 if step else 0.0)
    if not step:
        return
    store.gauge("orbitcast_energy_ladder_step", "Degradation step the live ladder follows now (0: full ladder)") \
        .set(float(step.get("index", 0)))
    on = store.gauge("orbitcast_energy_ladder_rung_on", "1 for each rung the transcoders make now (a dropped rung "
                                                        "is absent)", ("rendition",))
    fast = store.gauge("orbitcast_energy_ladder_rung_faster", "1 for each rung on the faster preset now",
                       ("rendition",))
    for rung in step.get("rungs", ()):
        on.set(1.0, str(rung))
        fast.set(1.0 if rung in step.get("fast_rungs", ()) else 0.0, str(rung))
    if (value := _number(step.get("fps"))) is not None:
        store.gauge("orbitcast_energy_ladder_fps", "Frame rate the live ladder makes now (absent: the source's)") \
            .set(value)
    if (value := _number(step.get("load_w"))) is not None:
        store.gauge("orbitcast_energy_ladder_load_watts", "The site's load at the step in force (the model's, at "
                                                          "the measured level when energy.enabled)").set(value)
    if (value := _number(ladder.get("soc"))) is not None:
        store.gauge("orbitcast_energy_ladder_soc_ratio", "Battery state of charge as the governor tracks it, 0..1 "
                                                         "(the plan's model of the site)").set(value)


def _accounting(store: MetricStore, body: Mapping[str, Any]) -> None:
    source = str(body.get("source") or "none")
    watts = store.gauge("orbitcast_energy_watts",
                        "Watts attributed to the feed's rung over the last 30 s (source: rapl, model, or mixed "
                        "across members)", ("feed", "rendition", "source"))
    per_media = store.gauge("orbitcast_energy_joules_per_media_second",
                            "Joules of the rung's recent segments over their media duration", ("feed", "rendition"))
    pool = store.gauge("orbitcast_energy_transcoding_watts",
                       "Power of the transcoder pool members over the last 30 s (their active share by CPU time "
                       "and their idle share)", ("source",))
    rel = store.gauge("orbitcast_energy_relative_error",
                      "Relative error (one standard error) of the joules and watts: 0.05 with RAPL, power.error "
                      "with the model")
    per_hour = store.gauge("orbitcast_sci_grams_per_hour",
                           "SCI-like gCO2e for one hour at the pool's present power: operational (energy x grid "
                           "intensity, solar-direct at 0) plus the host's embodied share")
    per_viewer = store.gauge("orbitcast_sci_grams_per_viewer_hour",
                             "The SCI-like figure per viewer-hour, viewers counted as /api/energy counts them "
                             "(absent while none are)")
    feed_hour = store.gauge("orbitcast_sci_feed_grams_per_hour",
                            "The SCI-like figure per hour of one feed: its watts, and the host's embodied share "
                            "in its part of the feeds' watts", ("feed",))
    feed_viewer = store.gauge("orbitcast_sci_feed_grams_per_viewer_hour",
                              "One feed's SCI-like figure per viewer-hour of its own viewers (absent while none are "
                              "counted)", ("feed",))
    for feed, f in (body.get("feeds") or {}).items():
        feed_sci = f.get("sci") or {}
        if (value := _number(feed_sci.get("g_per_hour"))) is not None:
            feed_hour.set(value, str(feed))
        if (value := _number(feed_sci.get("g_per_viewer_hour"))) is not None:
            feed_viewer.set(value, str(feed))
        for rung, r in (f.get("rungs") or {}).items():
            if (value := _number(r.get("watts"))) is not None:
                watts.set(value, str(feed), str(rung), source)
            if (value := _number(r.get("joules_per_media_s"))) is not None:
                per_media.set(value, str(feed), str(rung))
    if (value := _number(body.get("transcoding_w"))) is not None:
        pool.set(value, source)
    if (value := _number(body.get("rel_error"))) is not None:
        rel.set(value)
    sci = body.get("sci") or {}
    if (value := _number(sci.get("g_per_hour"))) is not None:
        per_hour.set(value)
    if (value := _number(sci.get("g_per_viewer_hour"))) is not None:
        per_viewer.set(value)


def _plan(store: MetricStore, plan: Mapping[str, Any] | None, now: float) -> None:
    ok = store.gauge("orbitcast_energy_plan_up", "1 when today's solar plan could be made (0: see plan_error in "
                                                 "/api/energy)")
    ok.set(0.0 if plan is None else 1.0)
    if plan is None:
        return
    feasible = store.gauge("orbitcast_energy_plan_feasible",
                           "1 when today's plan keeps the battery at or above its reserve every hour")
    step = store.gauge("orbitcast_energy_plan_step", "Ladder step of the current hour in today's plan (0: full ladder)")
    rungs = store.gauge("orbitcast_energy_plan_rungs", "Rungs per feed the current step keeps")
    pv = store.gauge("orbitcast_energy_plan_pv_watts", "PV power the plan expects this hour (mean AC watts, clear sky "
                                                       "x clearness)")
    load = store.gauge("orbitcast_energy_plan_load_watts", "The site's load at the current step (modelled watts)")
    soc = store.gauge("orbitcast_energy_battery_soc_ratio",
                      "Battery state of charge the plan expects now, 0..1 (modelled from the configured "
                      "midnight charge: no charge controller is read)")
    reserve = store.gauge("orbitcast_energy_battery_reserve_ratio", "The battery's night reserve, 0..1")
    feasible.set(1.0 if plan.get("feasible") else 0.0)
    if (value := _number(plan.get("reserve"))) is not None:
        reserve.set(value)
    current = plan.get("current_hour")
    hour = next((h for h in plan.get("hours", ()) if h.get("start") == current), None)
    if current is None or hour is None:
        return
    step.set(float(hour["step"]))
    current_step = plan.get("current_step") or {}
    rungs.set(float(len(current_step.get("rungs", ()))))
    pv.set(float(hour["pv_w"]))
    load.set(float(hour["load_w"]))
    # the hour's charge moves at a constant rate in the model: where it stands within the hour
    start = dt.datetime.fromisoformat(current).timestamp()
    into = min(max((now - start) / 3600.0, 0.0), 1.0)
    soc.set(hour["soc_start"] + (hour["soc_end"] - hour["soc_start"]) * into)
