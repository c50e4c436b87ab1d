"""Metrics one process records: counters, gauges, histograms with fixed buckets, and sessions
(ids last seen, counted over a window), as plain dicts that a snapshot copies.

Recording is a dict update and, for a histogram, a bisect: cheap enough for the viewer path,
which runs on one event loop (no lock). Actors whose threads record take their own lock or
record under one they already hold. A snapshot is plain data (tuples, dicts, floats) so it
pickles to the hub that merges every process's (hub.py); rendering is render.py's.
"""

from __future__ import annotations

import math
import secrets
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

Labels = tuple[str, ...]

COUNTER, GAUGE, HISTOGRAM, SESSIONS = "counter", "gauge", "histogram", "sessions"


class Family:
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labels: Labels = tuple(labels)

    def _check(self, values: Labels) -> None:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {values}")

    def describe(self) -> dict[str, Any]:
        return {"type": self.kind, "help": self.help, "labels": self.labels}


class Counter(Family):
    """Only goes up (per process): Prometheus reads a drop as a restart."""

    kind = COUNTER

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        # a family without labels has its one series from the start (0, not absent)
        self.values: dict[Labels, float] = {} if self.labels else {(): 0.0}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        value = self.values.get(labels)
        if value is None:
            self._check(labels)
            value = 0.0
        self.values[labels] = value + by

    def set_total(self, value: float, *labels: str) -> None:
        """Mirror a count kept elsewhere in this process (a `collections.Counter`)."""
        self._check(labels)
        self.values[labels] = float(value)

    def samples(self) -> dict[Labels, float]:
        return dict(self.values)


class Gauge(Family):
    kind = GAUGE

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self.values: dict[Labels, float] = {}

    def set(self, value: float, *labels: str) -> None:
        self._check(labels)
        self.values[labels] = float(value)

    def samples(self) -> dict[Labels, float]:
        return dict(self.values)


class Histogram(Family):
    """Counts per bucket (upper bounds, +Inf implied) and the sum, per label set."""

    kind = HISTOGRAM

    def __init__(self, name: str, help: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        bounds = tuple(float(b) for b in buckets if b != math.inf)
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets must be increasing and distinct")
        self.buckets = bounds
        self.values: dict[Labels, tuple[list[int], list[float]]] = {}
        if not self.labels:
            self.values[()] = ([0] * (len(bounds) + 1), [0.0])

    def observe(self, value: float, *labels: str) -> None:
        entry = self.values.get(labels)
        if entry is None:
            self._check(labels)
            entry = self.values[labels] = ([0] * (len(self.buckets) + 1), [0.0])
        # le is inclusive: a value equal to a bound belongs to that bucket
        entry[0][bisect_left(self.buckets, value)] += 1
        entry[1][0] += value

    def samples(self) -> dict[Labels, tuple[tuple[int, ...], float]]:
        return {k: (tuple(counts), total[0]) for k, (counts, total) in list(self.values.items())}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "buckets": self.buckets}


class Sessions(Family):
    """Ids (CMCD session ids) with the labels and time they were last seen; counted as a gauge
    of the ids seen in the last `window_s`. At most `max_ids` are kept: past that a new id is
    not tracked (and counted in `overflow`), so a client inventing ids costs bounded memory."""

    kind = SESSIONS

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), window_s: float = 30.0,
                 max_ids: int = 100_000) -> None:
        super().__init__(name, help, labels)
        self.window_s = window_s
        self.max_ids = max_ids
        self.seen_at: dict[str, tuple[Labels, float]] = {}
        self.overflow = 0

    def seen(self, session: str, now: float, *labels: str) -> None:
        if session not in self.seen_at and len(self.seen_at) >= self.max_ids:
            self.overflow += 1
            return
        self.seen_at[session] = (labels, now)

    def prune(self, now: float) -> None:
        cutoff = now - self.window_s
        if any(t < cutoff for _, t in self.seen_at.values()):
            self.seen_at = {k: v for k, v in self.seen_at.items() if v[1] >= cutoff}

    def samples(self) -> dict[str, tuple[Labels, float]]:
        return dict(self.seen_at)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "window_s": self.window_s}


def count_sessions(seen_at: dict[str, tuple[Labels, float]], now: float, window_s: float) -> dict[Labels, float]:
    """How many ids each label set has among those seen in the last `window_s`."""
    out: dict[Labels, float] = {}
    cutoff = now - window_s
    for labels, t in seen_at.values():
        if t >= cutoff:
            out[labels] = out.get(labels, 0.0) + 1
    return out


class MetricStore:
    """One process's families, by name; `snapshot()` is what it reports."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}
        # tells a restarted process from a late report of the one before (hub.py)
        self.instance = secrets.token_hex(8)

    def _add(self, family: Family) -> Any:
        if family.name in self.families:
            raise ValueError(f"metric {family.name} defined twice")
        self.families[family.name] = family
        return family

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help, labels))

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labels))

    def histogram(self, name: str, help: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> Histogram:
        return self._add(Histogram(name, help, buckets, labels))

    def sessions(self, name: str, help: str, labels: Sequence[str] = (), window_s: float = 30.0,
                 max_ids: int = 100_000) -> Sessions:
        return self._add(Sessions(name, help, labels, window_s, max_ids))

    def snapshot(self, now: float) -> dict[str, Any]:
        """Plain data: {"instance", "families": {name: {type, help, labels, [buckets], samples}}}."""
        out: dict[str, dict[str, Any]] = {}
        for family in list(self.families.values()):
            if isinstance(family, Sessions):
                family.prune(now)
            out[family.name] = {**family.describe(), "samples": family.samples()}
        return {"instance": self.instance, "families": out}


def merge_snapshots(snapshots: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Families of several snapshots as one: counters, gauges and histograms summed per label
    set, sessions joined (the latest sighting of an id wins). A family whose type, labels or
    buckets differ from the first seen under its name is left out of the sum (a process of
    another version)."""
    merged: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        for name, fam in snap["families"].items():
            into = merged.get(name)
            if into is None:
                into = merged[name] = {k: v for k, v in fam.items() if k != "samples"}
                into["samples"] = {}
            elif (into["type"], into["labels"], into.get("buckets")) != (fam["type"], fam["labels"], fam.get("buckets")):
                continue
            _add_samples(into["type"], into["samples"], fam["samples"])
    return merged


def _add_samples(kind: str, into: dict, samples: dict) -> None:
    if kind in (COUNTER, GAUGE):
        for labels, value in samples.items():
            into[labels] = into.get(labels, 0.0) + value
    elif kind == HISTOGRAM:
        for labels, (counts, total) in samples.items():
            have = into.get(labels)
            if have is None:
                into[labels] = (tuple(counts), total)
            else:
                into[labels] = (tuple(a + b for a, b in zip(have[0], counts)), have[1] + total)
    elif kind == SESSIONS:
        for session, (labels, t) in samples.items():
            have = into.get(session)
            if have is None or have[1] < t:
                into[session] = (labels, t)
