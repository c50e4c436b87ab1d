"""A local clock with an injected error, for tests and simulations.

Real hosts on one laptop share one oscillator, so the only way to show that a client
disciplines a bad clock is to give it one: `SkewedSource(0.25, 200)` runs 250 ms ahead of the
host and gains 200 us every second. It is a `TimeSource` for `DisciplinedClock` /
`SyncClient.from_config(cfg, source)`; production clients use the plain `MonotonicWall`.
"""

from __future__ import annotations

from .disciplined import MonotonicWall, TimeSource


class SkewedSource:
    """`base() + offset_s + drift_ppm * 1e-6 * (base() - t0)`, with t0 taken at creation."""

    def __init__(self, offset_s: float = 0.0, drift_ppm: float = 0.0,
                 base: TimeSource | None = None) -> None:
        self.offset_s = float(offset_s)
        self.drift_ppm = float(drift_ppm)
        # The monotonic clock by default, like a production client: a host NTP step under
        # a test must not look like the injected skew changing.
        self._base: TimeSource = base if base is not None else MonotonicWall()
        self._t0 = self._base()
        self._drift = self.drift_ppm * 1e-6

    @property
    def skewed(self) -> bool:
        return self.offset_s != 0.0 or self.drift_ppm != 0.0

    def __call__(self) -> float:
        t = self._base()
        return t + self.offset_s + self._drift * (t - self._t0)


def local_source(offset_s: float = 0.0, drift_ppm: float = 0.0) -> TimeSource:
    """The raw clock for a client: plain `MonotonicWall` unless a skew is asked for."""
    if offset_s == 0.0 and drift_ppm == 0.0:
        return MonotonicWall()
    return SkewedSource(offset_s, drift_ppm)
