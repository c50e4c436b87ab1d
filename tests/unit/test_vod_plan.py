"""Chunk planning (orbitcast/vod/plan.py): chunks own whole segments, start decoding at a
keyframe, cover the file and never overlap."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitcast.vod.plan import GRID_TOLERANCE, plan_chunks


def _check(chunks, keyframes, duration, d, length) -> None:
    assert chunks[0].start == 0 and chunks[-1].end == duration and chunks[-1].last
    assert not any(c.last for c in chunks[:-1])
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start  # contiguous: no gap, no overlap
    for c in chunks:
        assert c.start < c.end
        assert abs(c.start / d - round(c.start / d)) < 1e-6  # on the segment grid
        assert c.decode_from in keyframes or c.index == 0
        assert c.decode_from <= c.start + GRID_TOLERANCE
        # the latest keyframe at or before the start: nothing decoded that need not be
        assert not [k for k in keyframes if c.decode_from < k <= c.start + GRID_TOLERANCE]
    for c in chunks[:-1]:
        assert c.end - c.start >= math.floor(length / d) * d - GRID_TOLERANCE


def test_keyframes_on_the_grid_are_the_boundaries() -> None:
    keys = [float(k) for k in range(0, 40, 2)]
    chunks = plan_chunks(keys, 40.0, 1.0, 8)
    assert [(c.start, c.end) for c in chunks] == [(0, 8), (8, 16), (16, 24), (24, 32), (32, 40)]
    assert all(c.decode_from == c.start for c in chunks)  # boundaries land on keyframes
    _check(chunks, keys, 40.0, 1.0, 8)


def test_keyframes_off_the_grid_decode_from_the_one_before() -> None:
    keys = [0.0, 1.5, 3.1, 4.7, 6.3, 7.9, 9.5]
    chunks = plan_chunks(keys, 10.0, 1.0, 3)
    assert [(c.start, c.decode_from) for c in chunks] == [(0, 0.0), (4.0, 3.1), (8.0, 7.9)]
    _check(chunks, keys, 10.0, 1.0, 3)


def test_one_keyframe_makes_one_chunk() -> None:
    chunks = plan_chunks([0.0], 30.0, 2.0, 10)
    assert len(chunks) == 1 and chunks[0].end == 30.0 and chunks[0].last


def test_no_keyframe_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_chunks([], 10.0, 1.0, 4)


@settings(max_examples=300, deadline=None)
@given(gaps=st.lists(st.floats(0.04, 7.0), min_size=1, max_size=60), tail=st.floats(0.04, 5.0),
       d=st.sampled_from([0.5, 1.0, 2.0, 4.0]), length=st.floats(0.5, 30.0))
def test_any_keyframes_cover_the_file_without_overlap(gaps: list[float], tail: float, d: float, length: float) -> None:
    keys = [0.0]
    for g in gaps:
        keys.append(round(keys[-1] + g, 6))
    duration = round(keys[-1] + tail, 6)
    _check(plan_chunks(keys, duration, d, length), keys, duration, d, length)
