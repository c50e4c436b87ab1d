"""Merged families (hub.py, store.py) in the Prometheus text format, written by
prometheus_client's own exposition so that what a scraper reads is what its parser expects."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from .store import COUNTER, GAUGE, HISTOGRAM

# What generate_latest writes: the classic text format (every name here is a plain Prometheus
# name, so the 1.0.0 format's escaping never applies); scrapers of every version read it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _family(name: str, fam: dict[str, Any]) -> Metric | None:
    labels = list(fam["labels"])
    kind = fam["type"]
    if kind == COUNTER:
        out: Metric = CounterMetricFamily(name, fam["help"], labels=labels)
        for values, value in sorted(fam["samples"].items()):
            out.add_metric(list(values), value)
        return out
    if kind == GAUGE:
        out = GaugeMetricFamily(name, fam["help"], labels=labels)
        for values, value in sorted(fam["samples"].items()):
            out.add_metric(list(values), value)
        return out
    if kind == HISTOGRAM:
        out = HistogramMetricFamily(name, fam["help"], labels=labels)
        bounds = [*fam["buckets"], math.inf]
        for values, (counts, total) in sorted(fam["samples"].items()):
            running, buckets = 0, []
            for bound, count in zip(bounds, counts):
                running += count
                buckets.append((floatToGoString(bound), running))
            out.add_metric(list(values), buckets, total)
        return out
    return None


class _Families:
    def __init__(self, families: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        for name, fam in self.families:
            metric = _family(name, fam)
            if metric is not None:
                yield metric


def render(*groups: dict[str, dict[str, Any]]) -> bytes:
    """One exposition of every family in `groups` (by name, sorted; a name in two groups is
    taken from the first)."""
    seen: dict[str, dict[str, Any]] = {}
    for group in groups:
        for name, fam in group.items():
            seen.setdefault(name, fam)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(sorted(seen.items())))
    return generate_latest(registry)
