"""Chunks of a recording, each a run of whole segments, decoded from a keyframe.

Output time is the job's epoch plus source time, and segment `seq` is floor(t / D) as for a
live feed, so a chunk must own whole segments: its span starts on the segment grid. It is
decoded from the keyframe at or before its start (the pictures before the start are decoded as
references and dropped). Where the source has a keyframe on the grid (most encoders put one
every 1-2 s) that is the chunk's boundary and nothing is decoded twice; elsewhere at most one
segment's pictures are.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

GRID_TOLERANCE = 1e-3  # a keyframe this close to a boundary is on it (timestamps are rounded)


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float  # seconds from the first picture, on the segment grid
    end: float  # the next chunk's start; the file's duration for the last
    decode_from: float  # the keyframe at or before `start` (or within GRID_TOLERANCE after it)
    last: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Chunk":
        return cls(int(d["index"]), float(d["start"]), float(d["end"]), float(d["decode_from"]), bool(d.get("last")))


def _on_grid(t: float, d: float) -> float:
    """The first segment boundary at or after `t`."""
    return math.ceil((t - GRID_TOLERANCE) / d) * d


def plan_chunks(keyframes: Sequence[float], duration: float, segment_duration: float,
                chunk_seconds: float) -> list[Chunk]:
    """Chunks covering [0, duration) without overlap, about `chunk_seconds` long (rounded up
    to whole segments), each boundary at the first keyframe past the nominal one."""
    if duration <= 0 or not keyframes:
        raise ValueError("a recording needs a duration and a keyframe")
    d = segment_duration
    length = max(1, round(chunk_seconds / d)) * d
    keys = sorted(keyframes)
    starts: list[float] = [0.0]
    while True:
        nominal = starts[-1] + length
        i = bisect.bisect_left(keys, nominal - GRID_TOLERANCE)
        if i >= len(keys):
            break
        boundary = round(_on_grid(keys[i], d), 6)
        if boundary >= duration - GRID_TOLERANCE:
            break
        starts.append(boundary)
    chunks = []
    for n, start in enumerate(starts):
        last = n == len(starts) - 1
        end = duration if last else starts[n + 1]
        j = bisect.bisect_right(keys, start + GRID_TOLERANCE) - 1
        decode_from = keys[max(j, 0)]
        chunks.append(Chunk(n, start, end, decode_from, last))
    return chunks
