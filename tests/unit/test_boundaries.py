"""Segment and part boundary math: seq = floor(t / D), robust to float noise on boundaries."""

from __future__ import annotations

import math

import pytest

from orbitcast.media.boundaries import part_index, parts_per_segment, segment_index, segment_start

TICK = 1 / 90000


def q90k(t: float) -> float:
    """A time rounded to the 90 kHz clock, as sources hand them over."""
    return round(t * 90000) / 90000


@pytest.mark.parametrize(
    "t,d,seq",
    [
        (0.0, 2.0, 0),
        (1.999, 2.0, 0),
        (2.0, 2.0, 1),
        (2.001, 2.0, 1),
        (5.0, 2.0, 2),
        (6.0, 2.0, 3),
        (123456.0, 2.0, 61728),
        (0.5, 0.5, 1),
        (0.49, 0.5, 0),
    ],
)
def test_segment_index_basic(t: float, d: float, seq: int) -> None:
    assert segment_index(t, d) == seq


@pytest.mark.parametrize("d", [0.1, 0.3, 0.7, 1.001, 2.0, 2.002, 6.0])
def test_boundaries_computed_in_floats_land_in_their_segment(d: float) -> None:
    for k in range(0, 5000):
        t = k * d
        assert segment_index(t, d) == k, (k, t)
    # the same instants accumulated by repeated additions
    acc = 0.0
    for k in range(0, 500):
        assert segment_index(acc, d) == k, (k, acc)
        acc += d


def test_classic_float_noise() -> None:
    assert 0.1 + 0.2 != 0.3
    assert segment_index(0.1 + 0.2, 0.3) == 1
    assert segment_index(0.1 + 0.2, 0.1) == 3
    assert segment_index(0.7, 0.1) == 7  # 0.7 / 0.1 == 6.999999999999999
    assert 0.7 / 0.1 < 7
    assert segment_index(3 * 0.1, 0.1) == 3  # 0.30000000000000004


@pytest.mark.parametrize("d", [0.5, 1.0, 1.001, 2.0, 2.002, 4.0, 6.0, 10.0])
def test_90khz_times_around_boundaries(d: float) -> None:
    for k in range(1, 2000, 7):
        on = q90k(k * d)
        before = on - TICK
        after = on + TICK
        assert segment_index(on, d) == k
        assert segment_index(before, d) == k - 1
        assert segment_index(after, d) == k


@pytest.mark.parametrize("d", [12.0, 30.0])
def test_90khz_tick_before_boundary_with_long_segments(d: float) -> None:
    t = q90k(d - TICK)
    assert segment_index(t, d) == 0
    assert part_index(t, d, d / 4) == (0, 3)


def test_segment_start_inverts_segment_index() -> None:
    for d in (0.3, 2.0, 2.002):
        for seq in range(0, 1000, 13):
            start = segment_start(seq, d)
            assert segment_index(start, d) == seq
            assert segment_index(q90k(start), d) == seq
            assert start == pytest.approx(seq * d)


@pytest.mark.parametrize(
    "t,seq,part",
    [
        (0.0, 0, 0),
        (0.49, 0, 0),
        (0.5, 0, 1),
        (1.0, 0, 2),
        (1.5, 0, 3),
        (1.99, 0, 3),
        (2.0, 1, 0),
        (2.5, 1, 1),
        (7.75, 3, 3),
    ],
)
def test_part_index(t: float, seq: int, part: int) -> None:
    assert part_index(t, 2.0, 0.5) == (seq, part)


@pytest.mark.parametrize("d,p", [(2.0, 0.5), (1.0, 0.2), (0.3, 0.1), (2.002, 1.001), (6.0, 0.2)])
def test_part_boundaries_in_floats(d: float, p: float) -> None:
    n = parts_per_segment(d, p)
    for seq in range(0, 300, 7):
        for k in range(n):
            t = seq * d + k * p
            assert part_index(t, d, p) == (seq, k), (seq, k, t)
            assert part_index(q90k(t), d, p) == (seq, k), (seq, k, t)
            got_seq, got_part = part_index(q90k(t) - TICK, d, p)
            assert 0 <= got_part < n
            assert (got_seq, got_part) == ((seq, k - 1) if k else (seq - 1, n - 1))


@pytest.mark.parametrize("d,p,n", [(2.0, 0.5, 4), (2.0, 2.0, 1), (0.3, 0.1, 3), (1.2, 0.4, 3), (6.0, 0.2, 30), (0.7, 0.1, 7)])
def test_parts_per_segment(d: float, p: float, n: int) -> None:
    assert parts_per_segment(d, p) == n


@pytest.mark.parametrize("d,p", [(2.0, 0.3), (2.0, 0.75), (1.0, 0.4)])
def test_parts_per_segment_refuses_non_multiples(d: float, p: float) -> None:
    with pytest.raises(ValueError, match="multiple"):
        parts_per_segment(d, p)


@pytest.mark.parametrize("d", [0.0, -2.0])
def test_non_positive_segment_duration(d: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        segment_index(1.0, d)
    with pytest.raises(ValueError):
        part_index(1.0, d, 0.5)


def test_index_is_monotonic_in_time() -> None:
    d = 2.0
    prev = (-1, 0)
    for i in range(0, 90000 * 10, 1234):
        cur = part_index(i / 90000, d, 0.5)
        assert cur >= prev
        assert cur[0] == math.floor(i / 90000 / d + 1e-9)
        prev = cur
