"""Rendition choice by measured throughput, as hls.js makes it (its EwmaBandWidthEstimator and
AbrController, defaults of hls.js 1.7): two exponentially weighted moving averages of the
throughput of media downloads, weighted by how long each download took, a fast one (half-life
3 s) that follows a drop quickly and a slow one (9 s) that climbs slowly; the estimate is the
lower of the two. The time to first byte is left out of each sample (up to the estimated TTFB;
all of it for a request the server held on purpose, a preload hint), so the round trip and
the wait for a part that is not cut yet do not read as a slow link.

Hysteresis: a rendition above the current one must fit in 70 % of the estimate
(abrBandWidthUpFactor), the current one and those below in 95 % (abrBandWidthFactor), so the
choice does not flap when the estimate sits near a rung's bitrate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_ESTIMATE_BPS = 500_000.0  # abrEwmaDefaultEstimate: the guess before any download
DEFAULT_TTFB_S = 0.1
MIN_DELAY_S = 0.05  # a download counts as taking at least this long (hls.js minDelayMs)
MIN_WEIGHT = 0.001
UP_FACTOR = 0.7
DOWN_FACTOR = 0.95


@dataclass
class Ewma:
    half_life: float
    estimate_: float = 0.0
    total_weight: float = 0.0

    @property
    def alpha(self) -> float:
        return math.exp(math.log(0.5) / self.half_life)

    def sample(self, weight: float, value: float) -> None:
        adj = self.alpha ** weight
        self.estimate_ = value * (1 - adj) + adj * self.estimate_
        self.total_weight += weight

    @property
    def estimate(self) -> float:
        """The average with the bias of its zero start removed."""
        zero_factor = 1 - self.alpha ** self.total_weight
        return self.estimate_ / zero_factor if zero_factor > 0 else 0.0


@dataclass
class BandwidthEstimator:
    default_bps: float = DEFAULT_ESTIMATE_BPS
    fast: Ewma = field(default_factory=lambda: Ewma(3.0))
    slow: Ewma = field(default_factory=lambda: Ewma(9.0))
    ttfb: Ewma = field(default_factory=lambda: Ewma(9.0))

    def sample(self, seconds: float, nbytes: int) -> None:
        """One media download: `nbytes` in `seconds` (TTFB already taken out)."""
        seconds = max(seconds, MIN_DELAY_S)
        bps = 8 * nbytes / seconds
        self.fast.sample(seconds, bps)
        self.slow.sample(seconds, bps)

    def sample_ttfb(self, seconds: float) -> None:
        # hls.js weighs short TTFBs more: sqrt(2) * exp(-t^2 / 2)
        self.ttfb.sample(math.sqrt(2) * math.exp(-(seconds ** 2) / 2), max(seconds, 0.005))

    @property
    def ttfb_estimate(self) -> float:
        return self.ttfb.estimate if self.ttfb.total_weight >= MIN_WEIGHT else DEFAULT_TTFB_S

    @property
    def measured(self) -> bool:
        """A download has been sampled (before that, the estimate is the default guess)."""
        return self.fast.total_weight >= MIN_WEIGHT

    @property
    def estimate(self) -> float:
        if not self.measured:
            return self.default_bps
        return min(self.fast.estimate, self.slow.estimate)

    def download(self, total_s: float, ttfb_s: float, nbytes: int, held: bool = False) -> None:
        """Account for one media download as hls.js does: the sample's duration is the whole
        request less its TTFB, at most the TTFB estimate of it (all of it when `held`)."""
        cut = ttfb_s if held else min(ttfb_s, self.ttfb_estimate)
        if not held:
            self.sample_ttfb(ttfb_s)
        self.sample(total_s - cut, nbytes)


def choose(bitrates: Sequence[int], current: int | None, estimate_bps: float,
           up: float = UP_FACTOR, down: float = DOWN_FACTOR) -> int:
    """Index of the highest rendition (bitrates ascending) that fits the estimate: within `up`
    of it above `current`, within `down` of it at or below. The lowest when none fits."""
    best = 0
    for i, bitrate in enumerate(bitrates):
        factor = up if current is not None and i > current else down
        if bitrate <= estimate_bps * factor:
            best = i
    return best
