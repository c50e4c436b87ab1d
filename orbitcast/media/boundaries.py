"""Segment and part boundary math on the feed's media timeline.

Segment `seq` covers media time [seq*D, (seq+1)*D). Because seq is a function of time, every rung
and every transcoder (also one that takes a feed over after a crash) numbers a segment the same
way, and no number is lost or reused.
"""

from __future__ import annotations

import math

# Timestamps are on the 90 kHz clock; half a tick, in seconds, absorbs float noise at a
# boundary without ever moving a frame that is a whole tick away across it.
HALF_TICK = 0.5 / 90000
EPSILON = 1e-6  # for ratios of durations, as the config checks them


def segment_index(t: float, segment_duration: float) -> int:
    if segment_duration <= 0:
        raise ValueError("segment_duration must be positive")
    return math.floor((t + HALF_TICK) / segment_duration)


def part_index(t: float, segment_duration: float, part_duration: float) -> tuple[int, int]:
    """(segment seq, part number within the segment) for media time t."""
    seq = segment_index(t, segment_duration)
    within = t - seq * segment_duration
    return seq, max(0, math.floor((within + HALF_TICK) / part_duration))


def segment_start(seq: int, segment_duration: float) -> float:
    return seq * segment_duration


def parts_per_segment(segment_duration: float, part_duration: float) -> int:
    ratio = segment_duration / part_duration
    if abs(ratio - round(ratio)) > EPSILON:
        raise ValueError("segment_duration must be a whole multiple of part_duration")
    return round(ratio)
