"""The live window of every feed and rendition, as the delivery edge holds it.

Segments may arrive out of order and more than once (a retried hand-off, a transcoder that
took a feed over); the window keeps them ordered by seq and keeps the first copy of each.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..segment import Segment
from .playlists import RenditionInfo, master_playlist, media_playlist


@dataclass
class _Rendition:
    info: RenditionInfo | None = None
    init: bytes | None = None
    seqs: list[int] = field(default_factory=list)
    segments: dict[int, Segment] = field(default_factory=dict)
    # Seqs that follow a gap (EXT-X-DISCONTINUITY), and how many such points have been
    # forgotten: a playlist's EXT-X-DISCONTINUITY-SEQUENCE must count them (RFC 8216 6.2.2).
    gaps_after: set[int] = field(default_factory=set)
    forgotten_gaps: int = 0


class LiveWindow:
    def __init__(self, window: int, segment_duration: float, keep: int | None = None) -> None:
        self.window = window
        self.segment_duration = segment_duration
        # Segments just out of the playlist stay fetchable for players a little behind.
        self.keep = keep if keep is not None else window * 2
        self._feeds: dict[str, dict[str, _Rendition]] = {}

    def _rendition(self, feed: str, rendition: str) -> _Rendition:
        return self._feeds.setdefault(feed, {}).setdefault(rendition, _Rendition())

    def set_init(self, feed: str, info: RenditionInfo, init: bytes) -> None:
        r = self._rendition(feed, info.name)
        r.info, r.init = info, init

    def add(self, seg: Segment) -> bool:
        """Add a segment; False if that seq is already known or too old to list."""
        r = self._rendition(seg.feed, seg.rendition)
        if seg.seq in r.segments or (r.seqs and seg.seq < r.seqs[0]):
            return False
        bisect.insort(r.seqs, seg.seq)
        r.segments[seg.seq] = seg
        if seg.seq != r.seqs[0] and seg.seq - 1 not in r.segments:
            r.gaps_after.add(seg.seq)
        r.gaps_after.discard(seg.seq + 1)  # a late segment that fills a gap
        while len(r.seqs) > self.keep:
            del r.segments[r.seqs.pop(0)]
        for point in [p for p in r.gaps_after if p <= r.seqs[0]]:
            r.gaps_after.discard(point)
            r.forgotten_gaps += 1
        return True

    def feeds(self) -> list[str]:
        return sorted(self._feeds)

    def renditions(self, feed: str) -> list[RenditionInfo]:
        return [r.info for r in self._feeds.get(feed, {}).values() if r.info is not None and r.seqs]

    def listed(self, feed: str, rendition: str) -> list[Segment]:
        r = self._feeds.get(feed, {}).get(rendition)
        if r is None:
            return []
        return [r.segments[s] for s in r.seqs[-self.window:]]

    def newest(self, feed: str) -> Segment | None:
        newest = [r.segments[r.seqs[-1]] for r in self._feeds.get(feed, {}).values() if r.seqs]
        return max(newest, key=lambda s: (s.seq, s.rendition), default=None)

    def master(self, feed: str) -> str | None:
        infos = self.renditions(feed)
        return master_playlist(infos) if infos else None

    def media(self, feed: str, rendition: str) -> str | None:
        segs = self.listed(feed, rendition)
        if not segs:
            return None
        r = self._feeds[feed][rendition]
        first = segs[0].seq
        before = r.forgotten_gaps + sum(1 for p in r.gaps_after if p <= first)
        listed_gaps = {p for p in r.gaps_after if p > first}
        return media_playlist(segs, self.segment_duration, discontinuity_sequence=before, discontinuities=listed_gaps)

    def init(self, feed: str, rendition: str) -> bytes | None:
        r = self._feeds.get(feed, {}).get(rendition)
        return r.init if r else None

    def segment(self, feed: str, rendition: str, seq: int) -> Segment | None:
        r = self._feeds.get(feed, {}).get(rendition)
        return r.segments.get(seq) if r else None
