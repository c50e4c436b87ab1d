"""A disciplined clock: a local clock source steered toward the authority without ever
running backwards.

Design. Every measurement is taken against the *raw* local clock (never against the
disciplined output), so the filter sees a clean line `reference = raw + offset(raw)` whose
slope is the local frequency error; no past sample has to be rewritten when we correct.
The output is `raw + correction`, where the correction follows the fitted line plus a phase
error `e` that is slewed to zero at a bounded rate:

* `max_slew` defaults to 500 ppm, the bound of the NTP kernel discipline: it absorbs a
  200 ppm oscillator with room to spare, and it changes the length of a 2 s segment by at
  most 1 ms, which no player notices. The output rate is 1 + freq +- max_slew > 0, so the
  output is strictly increasing whenever the raw source is.
* At the first sync, if no time has been handed out yet, the clock steps straight onto the
  reference: nobody has seen the old time, so nothing can go backwards.
* Later, an error where we are *behind* by more than `step_forward_s` (128 ms, the NTP step
  threshold) is stepped forward: a forward step keeps monotonicity, and slewing 1 s at
  500 ppm would take half an hour. An error where we are *ahead* is always slewed.
* A last guard returns the previous reading if the raw source itself steps back.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Callable

from .filter import ClockFilter, Sample

TimeSource = Callable[[], float]


class ClockState(str, Enum):
    UNSYNCED = "unsynced"  # never had a good sample
    SYNCED = "synced"
    HOLDOVER = "holdover"  # had one, but the authority is away or silent


class MonotonicWall:
    """Default local source: CLOCK_MONOTONIC shifted to the Unix epoch once, at creation.

    `time.time()` can be stepped by the host's own NTP daemon or an operator; the monotonic
    clock cannot, so it is the right raw material for a clock that must never go back.
    """

    def __init__(self) -> None:
        self._base = time.time() - time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() + self._base


@dataclass(frozen=True)
class ClockStatus:
    state: ClockState
    offset_s: float | None  # last measured offset of the disciplined output vs reference
    raw_offset_s: float | None  # reference minus raw local clock (the skew being removed)
    frequency_ppm: float  # fitted frequency error of the raw local clock
    delay_s: float | None  # round-trip delay of the trusted (least-delay) sample
    error_bound_s: float | None  # max |output - reference| now; None when unsynced
    last_sync: float | None  # disciplined Unix time of the last good sample
    last_sync_age_s: float | None
    slew_remaining_s: float  # phase error still being slewed out (+ = we are ahead)
    samples: int
    failures: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d


class DisciplinedClock:
    def __init__(self, source: TimeSource | None = None, *, max_slew: float = 500e-6,
                 step_forward_s: float | None = 0.128, holdover_after_s: float = 10.0,
                 filter_size: int = 8) -> None:
        if not 0 < max_slew < 0.5:
            raise ValueError("max_slew must be in (0, 0.5)")
        self._source: TimeSource = source if source is not None else MonotonicWall()
        self.max_slew = max_slew
        self.step_forward_s = step_forward_s
        self.holdover_after_s = holdover_after_s
        self.filter = ClockFilter(size=filter_size)
        self._lock = threading.Lock()
        # Model: correction(raw) = a + b * (raw - x0) + e(raw)
        self._a = 0.0
        self._b = 0.0
        self._x0 = 0.0
        self._e = 0.0
        self._e_raw = 0.0
        self._synced = False
        self._handed_out = False
        self._last_out = -math.inf
        self._last_sample_raw: float | None = None
        self._last_sync_out: float | None = None
        self._last_offset: float | None = None
        self._failing = False
        self._failures = 0
        self._samples = 0
        self._reason = "no sample yet"

    # -- reading -------------------------------------------------------------------------
    def raw_now(self) -> float:
        """The undisciplined local clock: what exchanges timestamp t1 and t4 with."""
        return self._source()

    def _phase(self, raw: float) -> float:
        dt = max(0.0, raw - self._e_raw)
        mag = max(0.0, abs(self._e) - self.max_slew * dt)
        return math.copysign(mag, self._e)

    def _correction(self, raw: float) -> float:
        return self._a + self._b * (raw - self._x0) + self._phase(raw)

    def now(self) -> float:
        """Disciplined Unix time; never smaller than any value returned before."""
        raw = self._source()
        with self._lock:
            out = raw + self._correction(raw)
            if out < self._last_out:
                out = self._last_out
            self._last_out = out
            self._handed_out = True
            return out

    # -- steering ------------------------------------------------------------------------
    def add_sample(self, sample: Sample) -> None:
        """Feed one measurement (reference minus raw local clock) and re-steer."""
        raw = self._source()
        with self._lock:
            current = self._correction(raw)
            self.filter.add(sample)
            best = self.filter.best()
            assert best is not None
            freq = self.filter.frequency()
            if freq is not None:
                self._b = freq
            self._a, self._x0 = best.offset, best.time
            target = self._a + self._b * (raw - self._x0)
            if not self._synced and not self._handed_out:
                self._e = 0.0  # first sync before anyone read us: step for free
            else:
                e = current - target
                if self.step_forward_s is not None and e < -self.step_forward_s:
                    e = 0.0  # far behind: jump forward (monotonic), do not crawl
                self._e = e
            self._e_raw = raw
            self._last_offset = sample.offset - current
            self._synced = True
            self._failing = False
            self._samples += 1
            self._last_sample_raw = raw
            self._last_sync_out = max(raw + self._correction(raw), self._last_out)
            self._reason = "ok"

    def mark_failure(self, reason: str) -> None:
        """The authority did not answer (or answered nonsense): hold over on the model."""
        with self._lock:
            self._failing = True
            self._failures += 1
            self._reason = reason

    # -- reporting -----------------------------------------------------------------------
    def _state(self, raw: float) -> ClockState:
        if not self._synced:
            return ClockState.UNSYNCED
        assert self._last_sample_raw is not None
        if self._failing or raw - self._last_sample_raw > self.holdover_after_s:
            return ClockState.HOLDOVER
        return ClockState.SYNCED

    @property
    def state(self) -> ClockState:
        raw = self._source()
        with self._lock:
            return self._state(raw)

    def error_bound(self) -> float | None:
        """Max |now() - reference| we can vouch for; grows at 15 ppm without samples."""
        raw = self._source()
        with self._lock:
            return self._error_bound(raw)

    def _error_bound(self, raw: float) -> float | None:
        fb = self.filter.error_bound(raw)
        if fb is None:
            return None
        return fb + abs(self._phase(raw))

    def root_delay(self) -> float:
        """Round-trip delay to the primary reference through us (advertised by a server)."""
        with self._lock:
            best = self.filter.best()
            return 0.0 if best is None else best.delay + best.root_delay

    def status(self) -> ClockStatus:
        raw = self._source()
        with self._lock:
            best = self.filter.best()
            return ClockStatus(
                state=self._state(raw),
                offset_s=self._last_offset,
                raw_offset_s=self.filter.offset_at(raw),
                frequency_ppm=self._b * 1e6,
                delay_s=None if best is None else best.delay,
                error_bound_s=self._error_bound(raw),
                last_sync=self._last_sync_out,
                last_sync_age_s=(None if self._last_sample_raw is None
                                 else raw - self._last_sample_raw),
                slew_remaining_s=self._phase(raw),
                samples=self._samples,
                failures=self._failures,
                reason=self._reason,
            )
