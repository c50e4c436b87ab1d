"""The clock filter: which of the recent exchanges to believe, and how fast the clock drifts.

A sample's offset can be wrong by up to half its round-trip delay (the path may be
asymmetric), so the sample with the least delay is the one to trust (RFC 5905 clock filter).
Frequency comes from a weighted regression of offset over time, as chrony does, so that a
drifting local clock is corrected between exchanges and in holdover. The regression runs over
a longer history than the 8-sample offset window (chrony keeps up to 64 samples): the slope's
error is the offset noise divided by the time span, so 8 samples 1 s apart with 100 us of
path asymmetry would leave tens of ppm, while 64 bring it to a few ppm.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

# RFC 5905 PHI: the frequency tolerance assumed for any clock, 15 ppm. Every second since a
# measurement adds this much to the error we admit.
PHI = 15e-6
# Hardware oscillators are within a few hundred ppm; a regression that says more than this
# is noise on a short baseline, and following it would hurt more than ignoring it.
MAX_FREQUENCY = 1000e-6


@dataclass(frozen=True)
class Sample:
    """One measurement of the reference against the local (raw, undisciplined) clock.

    `time` is the local raw time the offset refers to (midpoint of t1 and t4); `offset` is
    reference minus local raw; `dispersion` is the error the measurement carries by itself
    (timestamp precision, a GPS sentence's latency uncertainty); `root_delay` and
    `root_dispersion` are what the source admits about its own distance to the primary.
    """

    time: float
    offset: float
    delay: float
    dispersion: float = 1e-6
    root_delay: float = 0.0
    root_dispersion: float = 0.0


class ClockFilter:
    """Keeps the last `size` samples; picks the least-delay one; fits frequency."""

    def __init__(self, size: int = 8, phi: float = PHI, noise_floor: float = 50e-6,
                 min_regression_samples: int = 3, history: int = 64) -> None:
        if size < 1:
            raise ValueError("filter size must be at least 1")
        self.size = size
        self.history = max(size, history)
        self.phi = phi
        # Weight floor for the regression: samples with little extra delay over the best are
        # all about as good; without a floor the best sample would get infinite weight.
        self.noise_floor = noise_floor
        self.min_regression_samples = min_regression_samples
        self._samples: deque[Sample] = deque(maxlen=self.history)

    def add(self, sample: Sample) -> None:
        if sample.delay < 0:
            # A negative delay is impossible on a causal path; clamp rather than reject
            # because a few microseconds of negative delay happen with coarse timestamps.
            sample = Sample(sample.time, sample.offset, 0.0, sample.dispersion,
                            sample.root_delay, sample.root_dispersion)
        self._samples.append(sample)

    def extend(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self.add(s)

    def clear(self) -> None:
        self._samples.clear()

    @property
    def samples(self) -> list[Sample]:
        """The offset window: the last `size` samples, oldest first."""
        return list(self._samples)[-self.size:]

    def __len__(self) -> int:
        return min(len(self._samples), self.size)

    def best(self) -> Sample | None:
        """The sample with the least delay among the last `size`; on a tie, the newest (it
        has aged least)."""
        best: Sample | None = None
        for s in self.samples:  # oldest first, so `<=` keeps the newest of equals
            if best is None or s.delay <= best.delay:
                best = s
        return best

    def frequency(self) -> float | None:
        """Frequency error of the local clock (d offset / d local time, dimensionless).

        Weighted least squares of offset over time across the whole history; weights favour
        low-delay samples because their offsets are the least corrupted by path asymmetry.
        None when there are too few samples or they span no time.
        """
        pts = list(self._samples)
        if len(pts) < self.min_regression_samples:
            return None
        dmin = min(s.delay for s in pts)
        ws = [1.0 / (s.delay - dmin + self.noise_floor) ** 2 for s in pts]
        sw = sum(ws)
        # Centre on the weighted means so that large Unix times do not cost precision.
        xm = sum(w * s.time for w, s in zip(ws, pts)) / sw
        ym = sum(w * s.offset for w, s in zip(ws, pts)) / sw
        sxx = sum(w * (s.time - xm) ** 2 for w, s in zip(ws, pts))
        if sxx <= 1e-12 * sw:
            return None
        sxy = sum(w * (s.time - xm) * (s.offset - ym) for w, s in zip(ws, pts))
        slope = sxy / sxx
        return max(-MAX_FREQUENCY, min(MAX_FREQUENCY, slope))

    def offset_at(self, local_time: float) -> float | None:
        """Best offset, carried forward to `local_time` with the fitted frequency."""
        best = self.best()
        if best is None:
            return None
        freq = self.frequency() or 0.0
        return best.offset + freq * (local_time - best.time)

    def error_bound(self, local_time: float) -> float | None:
        """Maximum error of `offset_at(local_time)`: half the best delay (asymmetry), the
        sample's own dispersion, the source's root distance, and PHI for every second since
        the sample was taken (RFC 5905 synchronization distance)."""
        best = self.best()
        if best is None:
            return None
        age = max(0.0, local_time - best.time)
        return (best.delay / 2.0 + best.dispersion + best.root_delay / 2.0
                + best.root_dispersion + self.phi * age)
