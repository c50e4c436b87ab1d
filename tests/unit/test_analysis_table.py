"""The analysis tags beside the catalog: a Parquet table keyed (feed, seq), partitioned by feed and
date like the catalog, folded as it grows, read back by time and joined to the catalog by any
Arrow reader; the edge's recorder dates each row by its segment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.dataset as pds
import pytest

from orbitcast.analysis.recorder import TagRecorder
from orbitcast.analysis.results import EXPRESSIONS, SegmentSummary
from orbitcast.analysis.table import AnalysisTable, summary_of
from orbitcast.catalog import Catalog
from orbitcast.segment import Segment
from orbitcast.store import Store

MIDNIGHT = datetime(2024, 3, 2, tzinfo=timezone.utc)
FIRST = int(MIDNIGHT.timestamp()) - 5  # five 1 s segments before midnight


def when(seq: int) -> datetime:
    return datetime.fromtimestamp(seq, timezone.utc)


def summary(seq: int, faces: int = 1) -> SegmentSummary:
    if not faces:
        return SegmentSummary(seq, frames=2, faces=0, start=seq + 0.2, end=seq + 0.7)
    probs = dict.fromkeys(EXPRESSIONS, 0.02)
    probs["happy"] = 0.88
    return SegmentSummary(seq, frames=2, faces=faces, expression="happy", confidence=0.88, probabilities=probs,
                          start=seq + 0.2, end=seq + 0.7)


def test_rows_by_feed_and_date_read_back_by_time(tmp_path: Path) -> None:
    table = AnalysisTable(Store(str(tmp_path)), flush_every=4, fold_at=1000)
    for seq in range(FIRST, FIRST + 10):
        table.add("iss", summary(seq, faces=seq % 2), when(seq), 1.0)
    table.add("moon", summary(FIRST), when(FIRST), 1.0)
    table.flush()
    assert sorted(p.name for p in (tmp_path / "analysis" / "feed=iss").iterdir()) == ["date=2024-03-01", "date=2024-03-02"]
    rows = table.query("iss", when(FIRST + 3), when(FIRST + 7))
    assert [r["seq"] for r in rows] == list(range(FIRST + 3, FIRST + 7))  # across midnight, one feed
    back = summary_of(rows[1])  # FIRST + 4: even, one face
    assert (back.faces, back.expression, back.frames) == ((FIRST + 4) % 2, "happy" if (FIRST + 4) % 2 else None, 2)
    face = summary_of(next(r for r in rows if r["faces"]))
    assert face.confidence == pytest.approx(0.88) and face.probabilities["happy"] == pytest.approx(0.88)
    assert sum(face.probabilities.values()) == pytest.approx(0.88 + 6 * 0.02)
    assert table.query("iss", when(FIRST + 100), when(FIRST + 200)) == []
    # a segment that began before `start` but overlaps it counts; one that ends at it does not
    assert [r["seq"] for r in table.query("iss", when(FIRST + 3) + timedelta(milliseconds=500), when(FIRST + 4))] == [FIRST + 3]


def test_any_arrow_reader_joins_it_to_the_catalog_on_feed_and_seq(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    catalog = Catalog(store, flush_every=100)
    table = AnalysisTable(store, flush_every=100)
    for seq in range(FIRST, FIRST + 6):
        for r in ("360p", "240p"):
            catalog.add(Segment("iss", r, seq, float(seq), 1.0, when(seq), b"x" * (seq % 7 + 1)))
        if seq != FIRST + 2:  # one segment never analysed: null columns
            table.add("iss", summary(seq, faces=1), when(seq), 1.0)
    catalog.flush()
    table.flush()
    segments = pds.dataset(str(tmp_path / "catalog"), format="parquet", partitioning="hive").to_table(
        columns=["feed", "rendition", "seq", "program_date_time", "digest"])
    tags = pds.dataset(str(tmp_path / "analysis"), format="parquet", partitioning="hive").to_table(
        columns=["feed", "seq", "faces", "expression", "expression_confidence", "analysis_frames"])
    joined = segments.join(tags, keys=["feed", "seq"], join_type="left outer").sort_by([("seq", "ascending"), ("rendition", "ascending")])
    assert joined.num_rows == 12
    faces = dict(zip(joined.column("seq").to_pylist(), joined.column("faces").to_pylist()))
    assert faces[FIRST + 2] is None and faces[FIRST + 3] == 1
    assert set(joined.column("analysis_frames").drop_null().to_pylist()) == {2}


def test_flush_files_fold_into_one_per_day_and_the_last_row_of_a_seq_wins(tmp_path: Path) -> None:
    table = AnalysisTable(Store(str(tmp_path)), flush_every=2, fold_at=4)
    start = int(MIDNIGHT.timestamp()) + 60
    for seq in range(start, start + 9):
        table.add("iss", summary(seq), when(seq), 1.0)
    table.add("iss", summary(start, faces=0), when(start), 1.0)  # written again (a restarted edge)
    table.flush()
    folder = tmp_path / "analysis" / "feed=iss" / "date=2024-03-02"
    names = sorted(p.name for p in folder.iterdir())
    assert sum(n.startswith("day-") for n in names) == 1 and len(names) <= 4, names
    assert not any(n.endswith(".partial") for n in names)
    rows = table.query("iss", when(start), when(start + 9))
    assert [r["seq"] for r in rows] == list(range(start, start + 9))
    assert rows[0]["faces"] == 0  # the later row


def test_buffered_rows_answer_queries_before_their_flush(tmp_path: Path) -> None:
    table = AnalysisTable(Store(str(tmp_path)), flush_every=100)
    table.add("iss", summary(FIRST), when(FIRST), 1.0)
    assert [r["seq"] for r in table.query("iss", when(FIRST), when(FIRST + 1))] == [FIRST]
    assert not (tmp_path / "analysis").exists()


def test_the_recorder_dates_rows_by_their_segment_or_after_a_while_by_capture(tmp_path: Path) -> None:
    now = [1000.0]
    listed: dict[int, tuple[datetime, float]] = {FIRST: (when(FIRST), 0.96)}
    table = AnalysisTable(Store(str(tmp_path)), flush_every=100)
    rec = TagRecorder(table, lambda feed, seq: listed.get(seq) if feed == "iss" else None, 1.0,
                      lambda: now[0], flush_s=10.0, wait_s=5.0)
    assert rec.after("iss") is None  # a new edge asks for the newest few
    rec.received("iss", [summary(FIRST), summary(FIRST + 1)])
    assert rec.after("iss") == FIRST + 1
    rec.tick()
    assert rec.stats() == {"written": 1, "undated": 0, "waiting": 1, "buffered": 1}
    listed[FIRST + 1] = (when(FIRST + 1), 1.0)  # its segment came
    rec.received("iss", [summary(FIRST + 2)])  # this one's never will
    now[0] += 6.0
    rec.tick()
    assert rec.stats()["written"] == 3 and rec.stats()["undated"] == 1
    now[0] += 5.0
    rec.tick()  # flush_s passed: on disk
    assert rec.stats()["buffered"] == 0 and (tmp_path / "analysis").exists()
    rows = table.query("iss", when(FIRST), when(FIRST + 3))
    assert [(r["seq"], r["duration"]) for r in rows] == [(FIRST, 0.96), (FIRST + 1, 1.0), (FIRST + 2, 1.0)]
    # the undated one is dated by its first analysed picture's capture time
    assert rows[2]["program_date_time"] == when(FIRST + 2) + timedelta(milliseconds=200)
    # a tag the window refused is not asked for again, nor written
    rec.seen("iss", FIRST + 7)
    assert rec.after("iss") == FIRST + 7 and rec.after("moon") is None
    rec.tick()
    assert rec.stats()["written"] == 3
