"""A virtual playback buffer: media buffered ahead of a playhead that moves in real time. It
knows when playback starts, when it runs dry (a stall) and when it resumes, how long it played
and stalled, and the program date-time of the frame at the playhead; nothing is decoded.

The playhead moves on the media timeline (seconds of media since the last seek), as a video
element's does; each piece of media added carries its program date-time, so the PDT at the
playhead is known. Media follows media in the order it is loaded: when a piece's PDT starts
later than the previous one ended (an `EXT-X-GAP` passed over, PDTs that jump), the media
timeline goes on and the PDT jumps with it, as a player shows the next frames it has; a piece
that overlaps what is buffered (a whole segment after some of its parts) adds only the rest.

Time is given by the caller (`now`, monotonic seconds), so the buffer drains by the time that
passed, however late the event loop wakes up, and unit tests drive it with made-up clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HOLE_S = 0.01  # a smaller mismatch between one piece's end and the next one's start is rounding


@dataclass
class PlaybackBuffer:
    threshold: float  # media seconds ahead of the playhead needed to start, and to resume
    playhead: float | None = None  # media seconds since the last seek
    end: float | None = None  # media buffered up to here
    rate: float = 1.0
    started_at: float | None = None  # monotonic time of the first play
    stalled_since: float | None = None
    stalls: list[tuple[float, float]] = field(default_factory=list)  # closed (start, end)
    played_s: float = 0.0  # wall seconds spent playing
    holes: int = 0  # pieces whose PDT started later than the previous one ended
    hole_s: float = 0.0  # PDT seconds jumped over at those
    _spans: list[tuple[float, float, float]] = field(default_factory=list)  # (media start, media end, PDT at start)
    _pdt_end: float | None = None  # PDT of the end of the media buffered
    _seek_pdt: float | None = None  # PDT the playhead was put at
    _last: float | None = None

    @property
    def ahead(self) -> float:
        """Media buffered ahead of the playhead, seconds (the forward buffer)."""
        if self.playhead is None or self.end is None:
            return 0.0
        return max(0.0, self.end - self.playhead)

    @property
    def playing(self) -> bool:
        return self.started_at is not None and self.stalled_since is None

    @property
    def pdt(self) -> float | None:
        """Program date-time of the frame at the playhead (None before any media)."""
        if self.playhead is None:
            return None
        if not self._spans:
            return self._seek_pdt
        while len(self._spans) > 1 and self._spans[0][1] <= self.playhead:
            self._spans.pop(0)  # played
        m0, _, p0 = self._spans[0]
        return p0 + (self.playhead - m0)

    def seek(self, position: float, buffered_from: float, now: float) -> None:
        """Put the playhead at PDT `position`, with media to be buffered from PDT
        `buffered_from` on (the independent part or segment at or before it). A seek while
        playing is a stall until the new position has media."""
        self.advance(now)
        self._seek_pdt = position
        self.playhead = position - buffered_from
        self.end = 0.0
        self._pdt_end = buffered_from
        self._spans = []
        if self.started_at is not None and self.stalled_since is None:
            self.stalled_since = now
        self._check(now)

    def advance(self, now: float) -> None:
        """Play from the last call to `now` at `rate`; runs dry at the end of the buffer."""
        last, self._last = self._last, now
        if last is None or now <= last or not self.playing:
            return
        assert self.playhead is not None and self.end is not None
        dt = now - last
        room = self.ahead / self.rate  # wall seconds the buffer lasts
        if dt < room:
            self.playhead += dt * self.rate
            self.played_s += dt
            return
        self.playhead = max(self.playhead, self.end)
        self.played_s += room
        self.stalled_since = last + room

    def add(self, start: float, end: float, now: float) -> None:
        """Media of PDTs [start, end) arrived (a part or a segment)."""
        self.advance(now)
        if self.end is None or self._pdt_end is None:
            raise ValueError("seek before adding media")
        if end <= self._pdt_end + 1e-6:
            return  # had it already
        if start < self._pdt_end + HOLE_S:
            start = min(max(start, self._pdt_end), end)  # contiguous, or overlapping: the rest is new
        else:
            self.holes += 1
            self.hole_s += start - self._pdt_end
        self._spans.append((self.end, self.end + (end - start), start))
        self.end += end - start
        self._pdt_end = end
        self._check(now)

    def set_rate(self, rate: float, now: float) -> None:
        self.advance(now)
        self.rate = rate

    def _check(self, now: float) -> None:
        if self.playhead is None or self.end is None:
            return
        if self.end - self.playhead + 1e-9 < self.threshold:
            return
        if self.started_at is None:
            self.started_at = now
        elif self.stalled_since is not None:
            self.stalls.append((self.stalled_since, now))
            self.stalled_since = None

    def stalled_s(self, now: float) -> float:
        """Wall seconds stalled so far (the open stall counted up to `now`)."""
        open_s = now - self.stalled_since if self.stalled_since is not None else 0.0
        return sum(b - a for a, b in self.stalls) + max(0.0, open_s)

    def all_stalls(self, now: float) -> list[tuple[float, float]]:
        """Every stall as (start, end), the open one ending at `now`."""
        out = list(self.stalls)
        if self.stalled_since is not None:
            out.append((self.stalled_since, max(now, self.stalled_since)))
        return out


def catch_up_rate(latency: float, target: float, target_duration: float, ahead: float, max_rate: float,
                  max_latency: float = math.inf) -> float:
    """hls.js's live catch-up (its latency controller): when the player is behind its target
    latency by less than the target plus a target duration (and less than `max_latency`,
    liveMaxLatencyDuration) and holds more than a second of media, it plays faster, up to
    `max_rate` (maxLiveSyncPlaybackRate; 1 turns it off). Further behind it plays at 1x: only
    the jump back to live (liveMaxLatencyDurationCount, the simulated viewer's) brings it back."""
    if max_rate <= 1:
        return 1.0
    distance = latency - target
    if 0.05 < distance < min(max_latency, target + target_duration) and ahead > 1.0:
        rate = round(2 / (1 + math.exp(-0.75 * distance)) * 20) / 20
        return min(min(2.0, max_rate), max(1.0, rate))
    return 1.0


def target_latency(hold_back: float, stalls: int, target_duration: float, per_stall: float = 1.0) -> float:
    """What hls.js aims for behind the live edge: the playlist's hold-back, raised by a second
    per stall (liveSyncOnStallIncrease), by at most one target duration."""
    return hold_back + min(stalls * per_stall, target_duration)
