"""The analysis tags beside the segment catalog: one Parquet row per analysed segment.

Tags come 0.5-1.5 s after their segment, when its catalog row is already written (Parquet
files cannot be amended), so they live in a table of their own, keyed by (feed, seq) like the
catalog and partitioned the same way, `analysis/feed=NAME/date=YYYY-MM-DD/*.parquet` (the UTC
date of the segment's program date-time): any Arrow reader joins it to
`catalog/feed=NAME/date=.../` on (feed, seq). A seq is the same segment in every rendition, so
there is one row per seq, not per rendition.

Rows are buffered and flushed as small files (`part-<ns>-<n>.parquet`); once a date partition
holds `fold_at` of them they are folded into one (`day-<ns>-<n>.parquet`), so a day of a feed
stays a handful of files. Every file is written under a temporary name and moved into place.
Readers keep the last row of a seq (a restarted writer may write one again).
"""

from __future__ import annotations

import itertools
import posixpath
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pyarrow.dataset as ds

from ..catalog import by_feed_and_date
from ..store import Store
from .results import EXPRESSIONS, SegmentSummary

SCHEMA = pa.schema([
    ("feed", pa.string()),
    ("seq", pa.int64()),
    ("program_date_time", pa.timestamp("ms", tz="UTC")),  # the segment's (its capture time when unknown)
    ("duration", pa.float64()),
    ("faces", pa.int16()),
    ("expression", pa.string()),
    ("expression_confidence", pa.float32()),
    ("analysis_frames", pa.int16()),
    ("expression_probabilities", pa.list_(pa.float32())),  # in EXPRESSIONS order; empty without faces
])
PDT = SCHEMA.field("program_date_time").type
FOLDER = "analysis"
MAX_SEGMENT_S = 30.0  # the longest segment: how far before `start` a segment may begin


def row_of(feed: str, summary: SegmentSummary, program_date_time: datetime, duration: float) -> dict[str, Any]:
    probs = summary.probabilities
    return {
        "feed": feed, "seq": summary.seq, "program_date_time": program_date_time, "duration": duration,
        "faces": min(summary.faces, 32767), "expression": summary.expression,
        "expression_confidence": summary.confidence, "analysis_frames": min(summary.frames, 32767),
        "expression_probabilities": [probs.get(name, 0.0) for name in EXPRESSIONS] if probs else [],
    }


def summary_of(row: dict[str, Any]) -> SegmentSummary:
    """A row back as the summary it was written from (capture times are not kept)."""
    probs = row.get("expression_probabilities") or []
    return SegmentSummary(
        seq=int(row["seq"]), frames=int(row["analysis_frames"]), faces=int(row["faces"]),
        expression=row["expression"],
        confidence=None if row["expression_confidence"] is None else float(row["expression_confidence"]),
        probabilities={name: float(p) for name, p in zip(EXPRESSIONS, probs)},
    )


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _last_per_seq(table: pa.Table) -> pa.Table:
    """One row per seq (the last in file order), by seq."""
    if table.num_rows < 2:
        return table
    order = pa.array(np.arange(table.num_rows))
    t = table.append_column("__i", order).sort_by([("seq", "ascending"), ("__i", "ascending")])
    seqs = t.column("seq").to_numpy()
    last = np.ones(len(seqs), dtype=bool)
    last[:-1] = seqs[1:] != seqs[:-1]
    return t.filter(pa.array(last)).drop_columns(["__i"])


class AnalysisTable:
    def __init__(self, store: Store, flush_every: int = 60, fold_at: int = 16) -> None:
        self.store = store
        self.fs = store.fs
        self.flush_every = flush_every
        self.fold_at = fold_at
        self._rows: list[dict[str, Any]] = []
        self._counter = itertools.count()

    # -- writing ----------------------------------------------------------------------------
    def add(self, feed: str, summary: SegmentSummary, program_date_time: datetime, duration: float) -> None:
        self._rows.append(row_of(feed, summary, _utc(program_date_time), duration))
        if len(self._rows) >= self.flush_every:
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def flush(self) -> list[str]:
        """Write the buffered rows (one file per feed and date); the files written."""
        if not self._rows:
            return []
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
        self._rows = []
        written = []
        for feed, day, part in by_feed_and_date(table):
            written.append(self._write(self.partition(feed, day), "part", part))
            self._fold(feed, day)
        return written

    def _write(self, folder: str, kind: str, table: pa.Table) -> str:
        self.fs.create_dir(folder, recursive=True)
        path = posixpath.join(folder, f"{kind}-{time.time_ns()}-{next(self._counter)}.parquet")
        tmp = path + ".partial"  # not a .parquet name: readers skip it
        pq.write_table(table, tmp, filesystem=self.fs)
        self.fs.move(tmp, path)
        return path

    def _fold(self, feed: str, day: str) -> None:
        paths = self.files(feed, [day]).get(day, [])
        if sum(posixpath.basename(p).startswith("part-") for p in paths) < self.fold_at:
            return
        merged = _last_per_seq(self._scan(paths, None))
        self._write(self.partition(feed, day), "day", merged)
        for p in paths:  # only once every row they hold is in the day file
            self.fs.delete_file(p)

    def partition(self, feed: str, day: str) -> str:
        return self.store.path(FOLDER, f"feed={feed}", f"date={day}")

    # -- reading ----------------------------------------------------------------------------
    def files(self, feed: str, days: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Parquet files of `feed` by date partition, each list in write order."""
        folder = self.store.path(FOLDER, f"feed={feed}")
        wanted = set(days) if days is not None else None
        out: dict[str, list[str]] = {}
        for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            name = posixpath.basename(info.path)
            if info.type != pafs.FileType.Directory or not name.startswith("date="):
                continue
            day = name.removeprefix("date=")
            if wanted is not None and day not in wanted:
                continue
            inner = self.fs.get_file_info(pafs.FileSelector(info.path, allow_not_found=True))
            paths = [i.path for i in inner if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
            # day files hold rows older than any part file beside them; names carry write order
            out[day] = sorted(paths, key=lambda p: (not posixpath.basename(p).startswith("day-"), posixpath.basename(p)))
        return out

    def _scan(self, paths: Sequence[str], filter: ds.Expression | None) -> pa.Table:
        if not paths:
            return SCHEMA.empty_table()
        import pyarrow.dataset as ds  # imported here: it imports pandas (catalog.py's _scan)

        return ds.dataset(list(paths), schema=SCHEMA, format="parquet", filesystem=self.fs).to_table(filter=filter)

    def query(self, feed: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Rows of `feed` whose segment overlaps [start, end), one per seq, by seq (buffered
        rows included)."""
        start, end = _utc(start), _utc(end)
        reach = start - timedelta(seconds=MAX_SEGMENT_S)
        first, last = reach.date(), end.date()
        days = [str(first + timedelta(days=i)) for i in range((last - first).days + 1)]
        expr = ((pc.field("feed") == feed) & (pc.field("program_date_time") < pa.scalar(end, type=PDT))
                & (pc.field("program_date_time") >= pa.scalar(reach, type=PDT)))
        for attempt in range(3):
            try:  # a fold deletes files a reader may just have listed: read again
                table = self._scan([p for ps in self.files(feed, days).values() for p in ps], expr)
                break
            except (FileNotFoundError, OSError):
                if attempt == 2:
                    raise
                time.sleep(0.05)
        if self._rows:
            table = pa.concat_tables([table, pa.Table.from_pylist(self._rows, schema=SCHEMA).filter(expr)])
        if table.num_rows:
            ends = table.column("program_date_time").cast(pa.int64()).to_numpy() + np.round(
                table.column("duration").to_numpy() * 1000)
            table = table.filter(pa.array(ends > start.timestamp() * 1000))
        return _last_per_seq(table).to_pylist()
