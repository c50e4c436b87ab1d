"""Every process's metrics in one view: what `GET /metrics` renders, whichever replica is asked.

Each process that records (Delivery replicas, the edge, the packagers) reports a snapshot of its
`MetricStore` every couple of seconds under a source name. The merged view sums counters,
gauges and histograms over the sources and joins session ids (one viewer seen by two replicas
is one viewer).

Counters must not fall when a process goes: a source that stops reporting for `ttl_s`, or
whose name comes back with another instance (a restarted actor), is retired. Its gauges go,
its counters and histograms stay in the sums. A retired instance that reports again (it was
only late) is taken back out, so it is never counted twice.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .store import COUNTER, GAUGE, HISTOGRAM, SESSIONS, count_sessions, merge_snapshots

SOURCES = "orbitcast_metrics_sources"


@dataclass
class _Source:
    instance: str
    received: float
    families: dict[str, dict[str, Any]]


def _kept(families: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a retired source leaves in the sums: its counters and histograms."""
    return {name: fam for name, fam in families.items() if fam["type"] in (COUNTER, HISTOGRAM)}


def _no_fall(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A later report of one instance whose counters are below the earlier one's: an older
    snapshot that arrived late (one process's figures relayed by several replicas, as the
    transcoders' energy is). A counter of one instance never falls, so the higher value stays."""
    out = dict(after)
    for name, fam in after.items():
        old = before.get(name)
        if fam["type"] != COUNTER or old is None or old["type"] != COUNTER:
            continue
        samples = dict(fam["samples"])
        for labels, value in old["samples"].items():
            if samples.get(labels, -1.0) < value:
                samples[labels] = value
        out[name] = {**fam, "samples": samples}
    return out


class MetricsHub:
    def __init__(self, ttl_s: float = 20.0, max_retired: int = 64) -> None:
        self.ttl_s = ttl_s
        self.max_retired = max_retired
        self.sources: dict[str, _Source] = {}
        self.retired: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
        # the oldest retired instances, folded into one (their counters only grow the sums)
        self.base: dict[str, dict[str, Any]] = {}

    def report(self, source: str, snapshot: dict[str, Any], now: float) -> None:
        instance = snapshot["instance"]
        previous = self.sources.get(source)
        if previous is not None and previous.instance != instance:
            self._retire(previous)
        self.retired.pop(instance, None)
        families = snapshot["families"]
        if previous is not None and previous.instance == instance:
            families = _no_fall(previous.families, families)
        self.sources[source] = _Source(instance, now, families)

    def _retire(self, source: _Source) -> None:
        self.retired[source.instance] = _kept(source.families)
        while len(self.retired) > self.max_retired:
            _, oldest = self.retired.popitem(last=False)
            self.base = merge_snapshots([{"families": self.base}, {"families": oldest}])

    def expire(self, now: float) -> None:
        for name, source in list(self.sources.items()):
            if now - source.received > self.ttl_s:
                self._retire(source)
                del self.sources[name]

    def merged(self, now: float) -> dict[str, dict[str, Any]]:
        """Families of every source, sessions counted as gauges, and how many sources of each
        kind (the part of a source name before its first '/') report."""
        self.expire(now)
        families = merge_snapshots([{"families": self.base}, *({"families": f} for f in self.retired.values()),
                                    *({"families": s.families} for s in self.sources.values())])
        for fam in families.values():
            if fam["type"] == SESSIONS:
                fam["samples"] = count_sessions(fam["samples"], now, fam.get("window_s", 30.0))
                fam["type"] = GAUGE
        kinds: dict[tuple[str, ...], float] = {}
        for name in self.sources:
            key = (name.split("/", 1)[0],)
            kinds[key] = kinds.get(key, 0.0) + 1
        families[SOURCES] = {"type": GAUGE, "help": "Processes reporting metrics, by component",
                             "labels": ("component",), "samples": kinds}
        return families

    def collect(self, source: str, snapshot: dict[str, Any], now: float) -> dict[str, dict[str, Any]]:
        """A fresh report from the process asking, then the merged view."""
        self.report(source, snapshot, now)
        return self.merged(now)
