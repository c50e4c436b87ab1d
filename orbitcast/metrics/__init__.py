"""Prometheus metrics without Ray: each process records into a `MetricStore`
(store.py), reports snapshots to one `MetricsHub` (hub.py) that merges them, and `render`
(render.py) writes the text format. docs/metrics.md lists every metric."""

from .hub import MetricsHub
from .render import CONTENT_TYPE, render
from .store import Counter, Gauge, Histogram, MetricStore, Sessions, merge_snapshots

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "MetricStore", "MetricsHub", "Sessions",
           "merge_snapshots", "render"]
