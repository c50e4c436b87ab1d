"""One feed's analysis: samples in, per-segment tags kept for the catalog, the playlists and
/api/analysis, and the picture of the moment for the viewer's overlay. The analysis actor
holds one of these; so can anything else that wants the stage without Ray."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from .analyzer import FrameAnalyzer
from .results import FrameAnalysis, SegmentSummary
from .sampling import Sample
from .summary import SegmentTagger

KEEP_SEGMENTS = 3600  # an hour of 1 s segments; older tags live in the catalog


class FeedAnalysis:
    def __init__(self, feed: str, analyzer: FrameAnalyzer, segment_duration: float, keep: int = KEEP_SEGMENTS) -> None:
        self.feed = feed
        self.analyzer = analyzer
        self.tagger = SegmentTagger(segment_duration)
        self.keep = keep
        self._summaries: OrderedDict[int, SegmentSummary] = OrderedDict()
        self.latest: FrameAnalysis | None = None
        self.analysed = 0
        self.refused = 0  # samples of another feed or pictures the analyser refused

    def add(self, samples: Iterable[Sample]) -> list[SegmentSummary]:
        """Analyse samples (in media-time order); returns the segments they closed."""
        closed: list[SegmentSummary] = []
        for s in samples:
            if s.feed != self.feed:
                self.refused += 1
                continue
            try:
                result = self.analyzer.analyze(s.picture, s.time, s.capture)
            except ValueError:
                self.refused += 1
                continue
            self.analysed += 1
            self.latest = result
            closed += self._keep(self.tagger.add(result))
        return closed

    def close(self) -> list[SegmentSummary]:
        """Tags of the segment still open (at the end of a feed)."""
        return self._keep(self.tagger.close())

    def _keep(self, done: list[SegmentSummary]) -> list[SegmentSummary]:
        for s in done:
            self._summaries[s.seq] = s
            self._summaries.move_to_end(s.seq)
        while len(self._summaries) > self.keep:
            self._summaries.popitem(last=False)
        return done

    def summaries(self, first_seq: int | None = None, last_seq: int | None = None) -> list[SegmentSummary]:
        """Kept tags of segments first_seq..last_seq (inclusive; None: open-ended), by seq."""
        return sorted(
            (s for s in self._summaries.values()
             if (first_seq is None or s.seq >= first_seq) and (last_seq is None or s.seq <= last_seq)),
            key=lambda s: s.seq,
        )

    def after(self, seq: int | None, limit: int = 64) -> list[SegmentSummary]:
        """Kept tags of segments after `seq` (None: the newest `limit`), oldest first. Cheap
        for a follower asking often: it walks back from the newest only as far as needed."""
        out: list[SegmentSummary] = []
        for s in reversed(self._summaries.values()):
            if (seq is not None and s.seq <= seq) or len(out) >= limit:
                break
            out.append(s)
        return sorted(out, key=lambda s: s.seq)

    def between(self, start: float, end: float) -> list[SegmentSummary]:
        """Kept tags whose analysed pictures were captured in [start, end] (unix seconds)."""
        return [s for s in self.summaries()
                if s.start is not None and s.end is not None and s.end >= start and s.start <= end]

    def stats(self) -> dict[str, int | float | None]:
        return {"analysed": self.analysed, "late": self.tagger.late, "refused": self.refused,
                "segments": len(self._summaries),
                "newest_seq": next(reversed(self._summaries)) if self._summaries else None}
