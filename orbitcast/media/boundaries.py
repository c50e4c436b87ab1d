"""Segment and part boundary math on the feed's media timeline.

Segment `seq` covers media time [seq*D, (seq+1)*D). Because seq is a function of time, every rung
and every transcoder (also one that takes a feed over after a crash) numbers a segment the same
way, and no number is lost or reused.
"""

from __future__ import annotations

import math

# Timestamps are rounded to the 90 kHz clock before they reach here; this guards float noise.
EPSILON = 1e-6


def segment_index(t: float, segment_duration: float) -> int:
    if segment_duration <= 0:
        raise ValueError("segment_duration must be positive")
    return math.floor(t / segment_duration + EPSILON)


def part_index(t: float, segment_duration: float, part_duration: float) -> tuple[int, int]:
    """(segment seq, part number within the segment) for media time t."""
    seq = segment_index(t, segment_duration)
    within = t - seq * segment_duration
    return seq, math.floor(within / part_duration + EPSILON)


def segment_start(seq: int, segment_duration: float) -> float:
    return seq * segment_duration


def parts_per_segment(segment_duration: float, part_duration: float) -> int:
    ratio = segment_duration / part_duration
    if abs(ratio - round(ratio)) > EPSILON:
        raise ValueError("segment_duration must be a whole multiple of part_duration")
    return round(ratio)
