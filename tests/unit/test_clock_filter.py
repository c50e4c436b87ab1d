"""Clock filter: least-delay pick, frequency regression, error bound."""

from __future__ import annotations

import random

import pytest

from orbitcast.clock.filter import PHI, ClockFilter, Sample


def test_keeps_last_eight_and_picks_least_delay() -> None:
    f = ClockFilter()
    rng = random.Random(7)
    true_offset = 0.040
    # Noisy samples: the offset error of each is its path asymmetry, up to delay/2.
    delays = [0.020, 0.012, 0.031, 0.0021, 0.018, 0.025, 0.009, 0.014, 0.016, 0.027]
    for i, d in enumerate(delays):
        asym = rng.uniform(-d / 2, d / 2)
        f.add(Sample(time=float(i), offset=true_offset + asym, delay=d))
    assert len(f) == 8  # the first two fell out
    best = f.best()
    assert best is not None and best.delay == 0.0021 and best.time == 3.0
    assert abs(best.offset - true_offset) <= 0.0021 / 2
    # Once the best ages out, the next least delay takes over.
    for i in range(10, 15):
        f.add(Sample(time=float(i), offset=true_offset, delay=0.05))
    # window is now samples 7..14: delays 0.014, 0.016, 0.027, then 0.05s
    assert f.best() is not None and f.best().delay == 0.014  # type: ignore[union-attr]


def test_tie_prefers_newest() -> None:
    f = ClockFilter()
    f.add(Sample(time=1.0, offset=0.1, delay=0.01))
    f.add(Sample(time=2.0, offset=0.2, delay=0.01))
    assert f.best().time == 2.0  # type: ignore[union-attr]


def test_frequency_recovered_from_drifting_offsets() -> None:
    # Local clock runs 200 ppm fast: offset (reference - local) falls 200 us per second.
    rng = random.Random(1)
    f = ClockFilter()
    for i in range(8):
        t = 1000.0 + 2.0 * i
        d = 0.0004 + rng.expovariate(1 / 0.0005)
        asym = rng.uniform(-1, 1) * (d - 0.0004) / 2  # lower-delay samples are cleaner
        f.add(Sample(time=t, offset=0.25 - 200e-6 * (t - 1000.0) + asym, delay=d))
    freq = f.frequency()
    assert freq is not None
    assert freq == pytest.approx(-200e-6, abs=20e-6)
    # Carried forward 10 s past the last sample, the offset is still right within 0.5 ms.
    assert f.offset_at(1024.0) == pytest.approx(0.25 - 200e-6 * 24.0, abs=0.0005)


def test_frequency_exact_on_clean_line_and_none_when_undetermined() -> None:
    f = ClockFilter()
    f.add(Sample(time=5.0, offset=1.0, delay=0.001))
    f.add(Sample(time=6.0, offset=1.0, delay=0.001))
    assert f.frequency() is None  # fewer than 3 samples
    f.add(Sample(time=7.0, offset=1.0 + 2e-6, delay=0.001))
    g = ClockFilter()
    for i in range(5):
        g.add(Sample(time=100.0, offset=1.0, delay=0.001))
    assert g.frequency() is None  # no time span
    h = ClockFilter()
    for i in range(8):
        h.add(Sample(time=1.7e9 + i, offset=-0.5 + 37e-6 * i, delay=0.001 * (1 + i % 3)))
    assert h.frequency() == pytest.approx(37e-6, rel=1e-6)


def test_error_bound_is_half_delay_plus_growing_dispersion() -> None:
    f = ClockFilter()
    assert f.error_bound(0.0) is None
    f.add(Sample(time=10.0, offset=0.0, delay=0.004, dispersion=1e-6, root_delay=0.002,
                 root_dispersion=0.0005))
    b0 = f.error_bound(10.0)
    assert b0 == pytest.approx(0.002 + 1e-6 + 0.001 + 0.0005)
    assert f.error_bound(110.0) == pytest.approx(b0 + PHI * 100.0)
