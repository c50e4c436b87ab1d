"""docs/metrics.md lists exactly the metrics the code exports, and the Grafana dashboard asks
only for those."""

from __future__ import annotations

import json
import re
from pathlib import Path

from orbitcast.delivery.http_metrics import ReplicaMetrics
from orbitcast.metrics import MetricsHub
from orbitcast.metrics.energy import energy_families, member_snapshot
from orbitcast.metrics.pipeline import EdgeMetrics, PackagerMetrics
from orbitcast.metrics.status import clock_families, feed_families, gateway_families

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\borbitcast_[a-z_]+[a-z]")


def exported() -> set[str]:
    """Every family name a scrape can carry (what deployments/metrics.py renders)."""
    hub = MetricsHub()
    for source, store in (("delivery/r", ReplicaMetrics().store), ("edge/edge", EdgeMetrics().store),
                          ("packager/iss", PackagerMetrics("iss").store)):
        hub.report(source, store.snapshot(0), 0)
    names = set(hub.merged(0)) | {"orbitcast_metrics_hub_up"}
    names |= set(feed_families([{"feed": "iss", "state": "live"}], 0))
    names |= set(gateway_families({"recipients": {}}, 0))
    clock = {"authority": {"name": "c", "role": "authority", "state": "synced"}}
    names |= set(clock_families(clock, 0))
    totals = {"joules": [], "media": [], "process_joules": {}}
    names |= set(member_snapshot({"instance": "m", "totals": totals}, 0)["families"])  # type: ignore[index]
    hour = {"start": "2024-01-01T00:00:00+00:00", "step": 0, "pv_w": 0.0, "load_w": 5.0, "soc_start": 0.5, "soc_end": 0.5}
    plan = {"feasible": True, "reserve": 0.2, "current_hour": hour["start"], "current_step": {"rungs": ["a"]},
            "hours": [hour]}
    ladder = {"following": True, "soc": 0.5,
              "step": {"index": 4, "rungs": ["a"], "fast_rungs": ["a"], "fps": 15, "load_w": 5.0}}
    names |= set(energy_families({"enabled": True, "plan": plan, "ladder": ladder}, 0))
    return names


def documented() -> set[str]:
    text = (DOCS / "metrics.md").read_text()
    return {m for line in text.splitlines() if line.startswith("| `orbitcast_") for m in NAME.findall(line.split("|")[1])}


def test_the_docs_list_every_exported_metric_and_no_other() -> None:
    assert documented() == exported()


def test_the_dashboard_asks_for_exported_metrics_only() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for e in exprs for name in NAME.findall(e)}
    assert used <= exported(), used - exported()
    # the main series each have a panel
    assert {"orbitcast_viewers", "orbitcast_http_requests_total", "orbitcast_http_request_duration_seconds",
            "orbitcast_part_listed_latency_seconds", "orbitcast_parts_published_total", "orbitcast_feed_input_state",
            "orbitcast_seal_seconds", "orbitcast_gateway_queue_depth", "orbitcast_clock_offset_seconds",
            "orbitcast_ledger_leaves", "orbitcast_viewer_buffer_seconds"} <= used
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24
