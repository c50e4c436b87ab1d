"""`GET /api/analysis/{feed}?start=&end=`: the analysis stage's tags of a feed's segments in a
time range, as JSON (docs/analysis.md).

Tags near the live edge come from the replica's live window (the edge pushes them with the
media); older ones from the analysis table beside the catalog (`orbitcast.analysis.table`). A
seq found in both is answered from the window. `start` and `end` are ISO 8601 (UTC unless it
says otherwise) or Unix seconds, parsed as the time-shift playlists parse them; without them
the last `DEFAULT_SPAN_S` seconds up to now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..analysis.results import EXPRESSIONS, SegmentSummary
from ..analysis.table import summary_of
from .names import BadName, check_name
from .playlists import iso_ms
from .timeshift import BadWindow, parse_instant, window_params
from .window import LiveWindow

DEFAULT_SPAN_S = 60.0

#: (feed, start, end) -> the table's rows overlapping [start, end), by seq
TableQuery = Callable[[str, datetime, datetime], list[dict[str, Any]]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def parse_range(params: Sequence[tuple[str, str]], now: datetime, max_span_s: float) -> tuple[datetime, datetime]:
    """[start, end) from the query; BadWindow (400) when malformed, reversed or too long."""
    found = window_params(params)
    end = parse_instant(found["end"], "end") if "end" in found else now
    start = parse_instant(found["start"], "start") if "start" in found else end - timedelta(seconds=DEFAULT_SPAN_S)
    if end <= start:
        raise BadWindow("end must be after start")
    if (end - start).total_seconds() > max_span_s:
        raise BadWindow(f"the range is longer than {max_span_s:g} s")
    return start, end


def entry(summary: SegmentSummary, program_date_time: datetime, duration: float) -> dict[str, Any]:
    return {
        "seq": summary.seq, "program_date_time": iso_ms(program_date_time), "duration": round(duration, 6),
        "faces": summary.faces, "expression": summary.expression,
        "confidence": None if summary.confidence is None else round(summary.confidence, 4),
        "frames": summary.frames,
        "probabilities": {k: round(summary.probabilities[k], 4) for k in EXPRESSIONS if k in summary.probabilities},
    }


class AnalysisAPI:
    """Answers /api/analysis for one replica: the table read in a worker thread (Parquet
    files), the live tags from the replica's window."""

    def __init__(self, window: LiveWindow, table: TableQuery | None, feeds: Collection[str],
                 analysed: Collection[str], max_span_s: float, clock: Callable[[], float]) -> None:
        self.window = window
        self.table = table
        self.feeds = set(feeds)
        self.analysed = set(analysed)
        self.max_span_s = max_span_s
        self.clock = clock

    async def answer(self, feed: str, params: Sequence[tuple[str, str]]) -> Answer:
        try:
            check_name(feed, "feed")
            start, end = parse_range(params, datetime.fromtimestamp(self.clock(), tz=timezone.utc), self.max_span_s)
        except BadName as err:
            return Answer(400, {"error": str(err)})
        if feed not in self.feeds:
            return Answer(404, {"error": f"feed {feed} not found"})
        if feed not in self.analysed:
            return Answer(404, {"error": f"feed {feed} is not analysed (analysis.enabled, analysis.feeds)"})
        by_seq: dict[int, dict[str, Any]] = {}
        if self.table is not None:
            for row in await asyncio.to_thread(self.table, feed, start, end):
                pdt = row["program_date_time"]
                by_seq[row["seq"]] = entry(summary_of(row), pdt, row["duration"])
        for summary, segment in self.window.tagged(feed):
            if segment is None:
                continue  # its segment is not listed yet: no date to place it by
            seg_end = segment.program_date_time + timedelta(seconds=segment.duration)
            if segment.program_date_time < end and seg_end > start:
                by_seq[summary.seq] = entry(summary, segment.program_date_time, segment.duration)
        return Answer(200, {"feed": feed, "start": iso_ms(start), "end": iso_ms(end),
                            "segments": [by_seq[s] for s in sorted(by_seq)]})

