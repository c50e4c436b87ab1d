"""The fixed shape of every live media playlist: durations, window sizes, LL-HLS parameters.

Section numbers refer to draft-pantos-hls-rfc8216bis (HLS 2nd edition). Everything a playlist
advertises from here (TARGETDURATION, PART-TARGET, PART-HOLD-BACK, CAN-SKIP-UNTIL) must never
change while the stream lives (6.2.1, 6.2.4), which is why it is one frozen value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from ..media.boundaries import parts_per_segment
from .names import MAX_PART_INDEX

_EPS = 1e-9


class _Ladder(Protocol):
    fps: int | None


class _Durations(Protocol):
    # what policy_of reads of an OrbitcastConfig; a Protocol keeps pydantic out of this module
    segment_duration: float
    part_duration: float
    part_hold_back: float | None
    live_window: int
    dvr_window: float
    ladder: _Ladder


def _ceil_ms(seconds: float) -> int:
    # Rounded up, not to nearest: a part of exactly the configured duration must still be
    # <= the advertised PART-TARGET (4.4.4.9), and hold-backs must not shrink below their bound.
    return math.ceil(seconds * 1000 - 1e-6)


@dataclass(frozen=True)
class PlaylistPolicy:
    """`segment_duration` D and `part_target` in seconds; `window` complete segments are listed,
    `keep` (>= window) stay fetchable; `parts_per_segment` is what the transcoder cuts per
    segment at integer frame rates (a segment may end up one part shorter or longer);
    `skip` offers Playlist Delta Updates (6.2.5.1).

    `keep` > `window` is advisable: 6.2.2 wants a segment fetchable for a while after it left
    the playlist, for players that loaded the playlist just before it slid.

    `dvr` (the DVR window, in segments): when larger than `window`, a live playlist lists that
    many, so that players can seek back; the window keeps only their listing (duration, date),
    and a segment older than `keep` is served from the archive (docs/delivery.md).
    """

    segment_duration: float
    part_target: float
    part_hold_back: float
    window: int
    keep: int
    parts_per_segment: int
    skip: bool = True
    dvr: int = 0

    def __post_init__(self) -> None:
        d = self.segment_duration
        if not (math.isfinite(d) and d > 0):
            raise ValueError("segment_duration must be a positive number of seconds")
        if not (math.isfinite(self.part_target) and 0 < self.part_target <= d):
            raise ValueError("part_target must be > 0 and <= segment_duration")
        if not math.isfinite(self.part_hold_back) or self.part_hold_back_ms < 2 * self.part_target_ms:
            raise ValueError("part_hold_back must be at least twice part_target (4.4.3.8)")
        if self.window < 3 or self.window * d < 3 * self.target_duration - 1e-6:
            # 6.2.2: a live playlist must not get shorter than three target durations (with a
            # D of 1.5 s, TARGETDURATION is 2 and three segments are not enough)
            raise ValueError("window must list at least 3 segments and 3 target durations")
        if self.keep < self.window:
            raise ValueError("keep must be >= window: every listed segment must be fetchable")
        if self.dvr < 0:
            raise ValueError("dvr must be >= 0 segments")
        if not 1 <= self.parts_per_segment <= MAX_PART_INDEX:
            raise ValueError(f"parts_per_segment must be in 1..{MAX_PART_INDEX}")

    @property
    def listed(self) -> int:
        """How many complete segments (gaps included) a live playlist lists."""
        return max(self.window, self.dvr)

    @property
    def target_duration(self) -> int:
        """EXT-X-TARGETDURATION: D rounded up, but float noise (2.0004) does not bump it (4.4.3.1)."""
        return max(1, math.ceil(self.segment_duration - 1e-3))

    @property
    def part_target_ms(self) -> int:
        return _ceil_ms(self.part_target)

    @property
    def part_hold_back_ms(self) -> int:
        return _ceil_ms(self.part_hold_back)

    @property
    def skip_boundary(self) -> float:
        """CAN-SKIP-UNTIL: the smallest the draft allows, six target durations (4.4.3.8)."""
        return 6.0 * self.target_duration

    @property
    def part_horizon(self) -> int:
        """How many seqs, counted back from the newest (inclusive), list their EXT-X-PART tags:
        as many whole segments as fit in three target durations (6.2.2 SHOULD)."""
        return max(1, math.floor(3 * self.target_duration / self.segment_duration + _EPS))

    @property
    def part_keep(self) -> int:
        """How many seqs, counted back from the last closed one, keep their parts' bytes: a part
        must stay fetchable three target durations after its tag left the playlist (6.2.2 MUST)."""
        after_removal = math.ceil(3 * self.target_duration / self.segment_duration - _EPS)
        return max(self.keep, self.part_horizon + after_removal)

    @property
    def blocking_timeout(self) -> float:
        """How long a blocked playlist request may wait before the server answers 503 (6.2.5.2:
        SHOULD, after more than three target durations)."""
        return 3.0 * self.target_duration

    @property
    def advance_part_limit(self) -> float:
        """6.2.5.2: three divided by PART-TARGET when that is under a second, else three. Counted
        on the advertised (ms) PART-TARGET, since that is what clients reason with."""
        ms = self.part_target_ms
        return 3000 / ms if ms < 1000 else 3.0


def part_target_for(part_duration: float, fps: float | None) -> float:
    """The longest part the transcoder cuts. The muxer closes a part at the first frame at or
    past the part duration, so at a frame rate that does not divide it a part runs up to a
    frame longer (6 frames of 29.97 fps are 0.2002 s for 0.2 s parts). With the frame rate
    unknown (the source's), 1 ms of room covers the NTSC rates, 29.97 and 59.94."""
    if fps:
        return math.ceil(part_duration * fps - 1e-6) / fps
    return part_duration + 0.001


def policy_of(config: "_Durations") -> PlaylistPolicy:
    """The policy of an OrbitcastConfig (anything with its duration fields)."""
    fps = config.ladder.fps
    target = part_target_for(config.part_duration, fps)
    hold_back = config.part_hold_back if config.part_hold_back is not None else 3 * target
    return PlaylistPolicy(
        segment_duration=config.segment_duration,
        part_target=min(target, config.segment_duration),
        part_hold_back=max(hold_back, 2 * target),
        window=config.live_window,
        keep=2 * config.live_window,
        parts_per_segment=parts_per_segment(config.segment_duration, config.part_duration),
        dvr=math.ceil(config.dvr_window / config.segment_duration - 1e-9) if config.dvr_window > 0 else 0,
    )
