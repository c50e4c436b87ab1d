"""LL-HLS Delivery Directives (draft-pantos-hls-rfc8216bis 6.2.5): parsing `_HLS_msn`,
`_HLS_part` and `_HLS_skip`, and deciding whether a blocked request can be answered yet.

Pure functions over a `LiveEdge` (where a rendition's playlist ends), so the HTTP layer can hold
a request on an event and re-ask after every write without this module knowing about either.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .names import BadName

MSN = "_HLS_msn"
PART = "_HLS_part"
SKIP = "_HLS_skip"
# 4.2 decimal-integer: [0-9], 1 to 20 characters, at most 2^64-1.
_DECIMAL_RE = re.compile(r"[0-9]{1,20}")
_MAX_DECIMAL = 2**64 - 1
# 6.2.5.1: YES skips segments; v2 also skips old date ranges (CAN-SKIP-DATERANGES).
_SKIP_VALUES = frozenset({"YES", "v2"})


class BadDirective(BadName):
    """A malformed or contradictory delivery directive: HTTP 400."""


class Readiness(enum.Enum):
    READY = "ready"  # answer now
    WAIT = "wait"  # hold the request; ask again after the next write
    TOO_FAR = "too_far"  # 400 at once (6.2.5.2)
    UNKNOWN = "unknown"  # 404: no such playlist, or a part that will never exist


@dataclass(frozen=True)
class PlaylistRequest:
    msn: int | None = None
    part: int | None = None
    skip: bool = False
    skip_dateranges: bool = False  # _HLS_skip=v2

    @property
    def blocking(self) -> bool:
        return self.msn is not None


def _decimal(name: str, value: str) -> int:
    if not _DECIMAL_RE.fullmatch(value):
        raise BadDirective(f"{name} must be a decimal integer")
    number = int(value)
    if number > _MAX_DECIMAL:
        raise BadDirective(f"{name} is out of range")
    return number


def parse_playlist_query(params: Iterable[tuple[str, str]]) -> PlaylistRequest:
    """The directives of a media playlist request. Parameters that are not directives (cache
    busters, tokens) are ignored, and so are other `_HLS_` names: they are reserved for future
    directives, which a server that does not know them can only ignore."""
    seen: dict[str, str] = {}
    for name, value in params:
        if name not in (MSN, PART, SKIP):
            continue
        if name in seen:
            raise BadDirective(f"{name} given more than once")
        seen[name] = value
    msn = _decimal(MSN, seen[MSN]) if MSN in seen else None
    part = _decimal(PART, seen[PART]) if PART in seen else None
    if part is not None and msn is None:
        raise BadDirective(f"{PART} without {MSN}")  # 6.2.5.2 MUST
    skip = seen.get(SKIP)
    if skip is not None and skip not in _SKIP_VALUES:
        raise BadDirective(f"{SKIP} must be YES or v2")
    return PlaylistRequest(msn, part, skip is not None, skip == "v2")


@dataclass(frozen=True)
class LiveEdge:
    """The end of one rendition's live playlist.

    `newest` is the newest seq with any media; every older seq is closed (a listed segment or
    a gap). `parts` is how many parts of `newest` are listed, `previous_parts` the same for
    `newest - 1` (0 for a gap or a segment listed without parts).
    """

    newest: int
    complete: bool  # the newest seq's segment is listed (EXTINF), so it takes no more parts
    parts: int
    previous_parts: int
    parts_per_segment: int
    advance_limit: float

    @property
    def last_msn(self) -> int:
        """The MSN of the last Media Segment in the playlist (6.2.5.2's reference point)."""
        return self.newest if self.complete else self.newest - 1

    @property
    def hint(self) -> tuple[int, int]:
        """The part the EXT-X-PRELOAD-HINT names: the one after the last listed."""
        if self.complete:
            return self.newest + 1, 0
        if self.parts < self.parts_per_segment:
            return self.newest, self.parts
        return self.newest + 1, 0

    def distance(self, seq: int, index: int) -> int:
        """How many parts (seq, index) lies after the last listed one; <= 0 if not after it."""
        last = (self.parts if not self.complete else max(self.parts, self.parts_per_segment)) - 1
        if seq <= self.newest:
            return index - last if seq == self.newest else -1
        # what is left of the newest segment, then whole segments, then the index itself
        left = 0 if self.complete else max(self.parts_per_segment - 1 - last, 0)
        return left + (seq - self.newest - 1) * self.parts_per_segment + index + 1

    def contains(self, msn: int, part: int | None) -> bool:
        """Whether the playlist holds segment `msn` (part None) or part (msn, part), with
        6.2.5.2's rule that an index past a segment's final part means part 0 of the next."""
        if msn > self.newest:
            return False
        if msn == self.newest:
            if part is None:
                return self.complete
            # a segment listed without parts holds all its media: no final part to roll past
            return part < self.parts or (self.complete and self.parts == 0)
        if part is None or msn < self.newest - 1:
            return True  # everything up to newest - 1 is closed; newest has media
        if self.previous_parts == 0 or part < self.previous_parts:
            return True
        return self.complete or self.parts > 0  # rolled over to (newest, 0)

    def _rolled(self, msn: int, part: int) -> tuple[int, int]:
        """The request a not-yet-contained (msn, part) really is after 6.2.5.2's roll-over."""
        if msn < self.newest:
            return self.newest, 0
        if msn == self.newest and self.complete:
            return self.newest + 1, 0
        return msn, part


def playlist_readiness(edge: LiveEdge, msn: int, part: int | None) -> Readiness:
    """A blocking playlist request (6.2.5.2). A request for an MSN long gone is READY: the
    server MUST deliver the whole playlist even if the segment is no longer in it."""
    if msn > edge.last_msn + 2:
        return Readiness.TOO_FAR
    if edge.contains(msn, part):
        return Readiness.READY
    if part is not None and edge.distance(*edge._rolled(msn, part)) > edge.advance_limit:
        return Readiness.TOO_FAR
    return Readiness.WAIT


def segment_readiness(edge: LiveEdge, seq: int, have_bytes: bool, awaited: bool = False) -> Readiness:
    """A request for a whole segment URI: its bytes, or a wait for the segment this replica is
    filling (or the next one), or for a listed one's certified bytes (`awaited`). Another
    replica may list it a moment before this one has the write: the player that read it there
    must not get a 404 here. Anything else: 404."""
    if have_bytes:
        return Readiness.READY
    if awaited or edge.last_msn < seq <= edge.newest + 1:
        return Readiness.WAIT
    return Readiness.UNKNOWN


def part_readiness(edge: LiveEdge, seq: int, index: int, have_bytes: bool) -> Readiness:
    """A request for a part URI: its bytes, or a wait for a part about to be published (the
    hinted one, or a few more within the Advance Part Limit), else 404 (6.2.6)."""
    if have_bytes:
        return Readiness.READY
    if seq < edge.newest or (seq == edge.newest and edge.complete):
        return Readiness.UNKNOWN  # a closed segment takes no more parts
    if 0 < edge.distance(seq, index) <= edge.advance_limit:
        return Readiness.WAIT
    return Readiness.UNKNOWN
