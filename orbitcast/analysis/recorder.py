"""The edge's side of the analysis tags: which tags of a feed to ask for next, and writing them
to the analysis table (`table.py`) once their segment's date is known.

A tag usually comes after its segment, whose program date-time and duration the live window
then knows; one that comes first waits for it, at most `wait_s`, and is then written dated by
its first analysed picture's capture time (the clock the program date-time is stamped on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from .results import SegmentSummary
from .table import AnalysisTable

#: (feed, seq) -> (program date-time, duration) of the segment, or None while unknown
SegmentDate = Callable[[str, int], "tuple[datetime, float] | None"]


class TagRecorder:
    def __init__(self, table: AnalysisTable | None, segment_date: SegmentDate, segment_duration: float,
                 clock: Callable[[], float], flush_s: float = 30.0, wait_s: float = 30.0) -> None:
        self.table = table
        self.segment_date = segment_date
        self.segment_duration = segment_duration
        self.clock = clock
        self.flush_s = flush_s
        self.wait_s = wait_s
        self.newest: dict[str, int] = {}  # feed -> newest seq received: ask for tags after it
        self._waiting: dict[tuple[str, int], tuple[SegmentSummary, float]] = {}
        self._flushed_at = clock()
        self.written = 0
        self.undated = 0  # written dated by capture time: their segment never came

    def after(self, feed: str) -> int | None:
        """The seq to ask a feed's analyser for tags after (None: its newest few)."""
        return self.newest.get(feed)

    def seen(self, feed: str, seq: int) -> None:
        """A tag of `seq` came (taken or not): ask for the ones after it next."""
        self.newest[feed] = max(self.newest.get(feed, seq), seq)

    def received(self, feed: str, summaries: Iterable[SegmentSummary]) -> None:
        """New tags (the window took them): rows for the table."""
        now = self.clock()
        for s in summaries:
            self.seen(feed, s.seq)
            if self.table is not None:
                self._waiting.setdefault((feed, s.seq), (s, now))

    def tick(self) -> None:
        """Rows whose segment is dated (or that waited long enough) go to the table; the
        table is flushed every `flush_s` seconds."""
        if self.table is None:
            return
        now = self.clock()
        for key, (s, since) in list(self._waiting.items()):
            feed, seq = key
            dated = self.segment_date(feed, seq)
            if dated is None and now - since < self.wait_s:
                continue
            if dated is None:
                if s.start is None:  # nothing to date it by
                    del self._waiting[key]
                    continue
                dated = (datetime.fromtimestamp(s.start, tz=timezone.utc), self.segment_duration)
                self.undated += 1
            self.table.add(feed, s, *dated)
            self.written += 1
            del self._waiting[key]
        if now - self._flushed_at >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        if self.table is not None:
            self.table.flush()
        self._flushed_at = self.clock()

    def stats(self) -> dict[str, int]:
        return {"written": self.written, "undated": self.undated, "waiting": len(self._waiting),
                "buffered": self.table.pending if self.table is not None else 0}
