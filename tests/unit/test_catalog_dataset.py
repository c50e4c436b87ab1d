"""The catalog as a dataset: partitioned by feed and date, queried by feed, rendition and time,
compacted without losing a row, and stores of the feed-only layout still read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq

from orbitcast.catalog import SCHEMA, Archived, Catalog
from orbitcast.segment import Segment
from orbitcast.store import Store

D = 1.0
MIDNIGHT = datetime(2024, 3, 2, tzinfo=timezone.utc)


def seg(seq: int, rendition: str = "360p", feed: str = "iss", data: bytes | None = None,
        at: datetime | None = None) -> Segment:
    """Seq on a timeline that starts at the wall clock: its PDT is seq * D."""
    t = at or datetime.fromtimestamp(seq * D, tz=timezone.utc)
    return Segment(feed, rendition, seq, seq * D, D, t, data if data is not None else seq.to_bytes(8, "big"))


def archived(seq: int) -> Archived:
    return Archived((f"{seq:032x}",), (bytes([seq % 256]) * 40,), "abcdef012345")


def first_seq() -> int:
    return int((MIDNIGHT - timedelta(seconds=10)).timestamp())  # ten seconds before midnight


def filled(tmp_path: Path, n: int = 20, flush_every: int = 4) -> Catalog:
    cat = Catalog(Store(str(tmp_path)), flush_every=flush_every)
    for s in range(first_seq(), first_seq() + n):
        for r in ("360p", "240p"):
            cat.add(seg(s, r), archived(s))
    cat.flush()
    return cat


def test_rows_go_to_the_date_of_their_program_date_time(tmp_path: Path) -> None:
    filled(tmp_path)
    days = sorted(p.name for p in (tmp_path / "catalog" / "feed=iss").iterdir())
    assert days == ["date=2024-03-01", "date=2024-03-02"]
    files = (tmp_path / "catalog/feed=iss/date=2024-03-01").glob("*.parquet")
    before = pa.concat_tables(pq.ParquetFile(f).read() for f in files)
    assert set(before.column("seq").to_pylist()) == set(range(first_seq(), first_seq() + 10))


def test_any_arrow_reader_queries_it_by_feed_and_date(tmp_path: Path) -> None:
    cat = filled(tmp_path)
    for s in range(3):
        cat.add(seg(first_seq() + s, feed="moon"))
    cat.flush()
    dataset = pds.dataset(str(tmp_path / "catalog"), format="parquet", partitioning="hive")
    t = dataset.to_table(filter=(pds.field("feed") == "iss") & (pds.field("date") == "2024-03-02"))
    assert sorted(set(t.column("seq").to_pylist())) == list(range(first_seq() + 10, first_seq() + 20))
    assert t.num_rows == 20  # two renditions
    moon = dataset.to_table(filter=pds.field("feed") == "moon")
    assert moon.num_rows == 3


def test_a_time_query_opens_only_the_days_it_covers(tmp_path: Path) -> None:
    cat = filled(tmp_path)
    # a day the query does not cover holds a file no reader could open
    bad = tmp_path / "catalog/feed=iss/date=2024-02-20"
    bad.mkdir()
    (bad / "part-1-0.parquet").write_bytes(b"not parquet")
    t = cat.query("iss", rendition="360p", start=MIDNIGHT + timedelta(seconds=2), end=MIDNIGHT + timedelta(seconds=5))
    assert t.column("seq").to_pylist() == [first_seq() + 12, first_seq() + 13, first_seq() + 14]
    assert t.schema == SCHEMA
    # a segment that began before the start overlaps it (media in [start, end))
    t = cat.query("iss", rendition="240p", start=MIDNIGHT - timedelta(seconds=0.5), end=MIDNIGHT + timedelta(seconds=1),
                  columns=["seq", "program_date_time"])
    assert t.column("seq").to_pylist() == [first_seq() + 9, first_seq() + 10]
    assert t.column_names == ["seq", "program_date_time"]


def test_a_range_across_midnight_reads_both_days(tmp_path: Path) -> None:
    cat = filled(tmp_path)
    t = cat.query("iss", rendition="360p", start=MIDNIGHT - timedelta(seconds=3), end=MIDNIGHT + timedelta(seconds=3))
    assert t.column("seq").to_pylist() == list(range(first_seq() + 7, first_seq() + 13))
    assert t.column("sealed").to_pylist()[0] == list(archived(first_seq() + 7).sealed)


def test_buffered_rows_answer_queries_too(tmp_path: Path) -> None:
    cat = Catalog(Store(str(tmp_path)), flush_every=1000)
    cat.add(seg(first_seq()))
    assert cat.query("iss", start=MIDNIGHT - timedelta(seconds=20), end=MIDNIGHT).num_rows == 1
    assert Catalog(Store(str(tmp_path))).query("iss", start=MIDNIGHT - timedelta(seconds=20), end=MIDNIGHT).num_rows == 0


def test_the_last_catalogued_version_of_a_seq_wins(tmp_path: Path) -> None:
    cat = Catalog(Store(str(tmp_path)), flush_every=1)
    s = first_seq()
    cat.add(seg(s, data=b"first"))
    cat.add(seg(s + 1))
    cat.add(seg(s, data=b"made again"))  # a transcoder that took the feed over made it again
    t = cat.query("iss", rendition="360p", start=MIDNIGHT - timedelta(seconds=20), end=MIDNIGHT)
    assert t.column("seq").to_pylist() == [s, s + 1]
    assert t.column("bytes").to_pylist()[0] == len(b"made again")
    every = cat.query("iss", start=MIDNIGHT - timedelta(seconds=20), end=MIDNIGHT, latest=False)
    assert every.num_rows == 3
    # still the later one once compaction merged the files
    assert cat.compact("iss", today="2024-03-01", min_files=1) == 3
    t = cat.query("iss", rendition="360p", start=MIDNIGHT - timedelta(seconds=20), end=MIDNIGHT)
    assert t.column("bytes").to_pylist()[0] == len(b"made again")


def test_seq_ranges(tmp_path: Path) -> None:
    cat = filled(tmp_path)
    t = cat.query("iss", rendition="360p", seqs=(first_seq() + 3, first_seq() + 5), columns=["seq"])
    assert t.column("seq").to_pylist() == [first_seq() + 3, first_seq() + 4, first_seq() + 5]


# -- compaction -------------------------------------------------------------------------------
def _files(tmp_path: Path, day: str) -> list[Path]:
    return sorted((tmp_path / "catalog" / "feed=iss" / f"date={day}").glob("*.parquet"))


def test_compaction_merges_past_days_and_keeps_every_row(tmp_path: Path) -> None:
    cat = filled(tmp_path, n=20, flush_every=4)
    before = cat.read()
    files = len(_files(tmp_path, "2024-03-01")) + len(_files(tmp_path, "2024-03-02"))
    assert len(_files(tmp_path, "2024-03-01")) > 1 and len(_files(tmp_path, "2024-03-02")) > 1
    assert cat.compact("iss", today="2024-03-03") == files
    # one file per hour: the ten seconds before midnight, and the ten after
    assert [f.name.startswith("hour-23-") for f in _files(tmp_path, "2024-03-01")] == [True]
    assert [f.name.startswith("hour-00-") for f in _files(tmp_path, "2024-03-02")] == [True]
    after = Catalog(Store(str(tmp_path))).read()
    assert after.num_rows == before.num_rows == 40
    assert after.equals(before)
    assert not list((tmp_path / "catalog").rglob("*.partial"))
    assert cat.compact("iss", today="2024-03-03") == 0  # nothing left to merge


def test_a_query_opens_only_the_hour_files_of_its_range(tmp_path: Path) -> None:
    cat = filled(tmp_path)
    cat.compact("iss", today="2024-03-03")
    # another hour of the same day holds a file no reader could open
    (tmp_path / "catalog/feed=iss/date=2024-03-02/hour-05-1-0.parquet").write_bytes(b"not parquet")
    t = cat.query("iss", rendition="360p", start=MIDNIGHT, end=MIDNIGHT + timedelta(seconds=3), columns=["seq"])
    assert t.column("seq").to_pylist() == [first_seq() + 10, first_seq() + 11, first_seq() + 12]


def test_today_is_merged_only_once_flush_files_pile_up(tmp_path: Path) -> None:
    cat = filled(tmp_path, n=20, flush_every=4)
    past, today = len(_files(tmp_path, "2024-03-01")), len(_files(tmp_path, "2024-03-02"))
    assert cat.compact("iss", today="2024-03-02", min_files=today + 1) == past  # the past day only
    assert len(_files(tmp_path, "2024-03-02")) == today
    assert cat.compact("iss", today="2024-03-02", min_files=today) == today
    assert len(_files(tmp_path, "2024-03-02")) == 1
    # later flushes beside the merged file: merged again only when they pile up, not the merged one
    for s in range(first_seq() + 20, first_seq() + 24):
        cat.add(seg(s), archived(s))
    cat.flush()
    assert cat.compact("iss", today="2024-03-02", min_files=2) == 0
    assert cat.read().num_rows == 44


def test_feed_only_partitions_of_older_stores_are_read_and_moved_into_days(tmp_path: Path) -> None:
    """A store written before the date level and before the archive columns existed."""
    old_schema = pa.schema([f for f in SCHEMA if f.name in
                            ("feed", "rendition", "seq", "start", "duration", "program_date_time", "bytes", "bitrate", "digest")])
    rows = [{"feed": "iss", "rendition": "360p", "seq": first_seq() + i, "start": float(first_seq() + i), "duration": D,
             "program_date_time": datetime.fromtimestamp(first_seq() + i, tz=timezone.utc), "bytes": 8, "bitrate": 64,
             "digest": "ab" * 32} for i in range(20)]
    folder = tmp_path / "catalog" / "feed=iss"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows[:12], schema=old_schema), folder / "part-1-0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[12:], schema=old_schema), folder / "part-2-1.parquet")
    cat = Catalog(Store(str(tmp_path)))
    t = cat.read()
    assert t.num_rows == 20 and t.column("blob_ids").null_count == 20
    q = cat.query("iss", rendition="360p", start=MIDNIGHT - timedelta(seconds=2), end=MIDNIGHT + timedelta(seconds=2))
    assert q.column("seq").to_pylist() == list(range(first_seq() + 8, first_seq() + 12))
    # new rows beside the old ones
    cat.add(seg(first_seq() + 20), archived(first_seq() + 20))
    cat.flush()
    assert cat.read().num_rows == 21
    assert cat.compact("iss", today="2024-03-02") == 2
    assert not list(folder.glob("*.parquet"))  # the feed-level files are gone, their rows kept
    assert sorted(p.name for p in folder.iterdir()) == ["date=2024-03-01", "date=2024-03-02"]
    after = cat.read()
    assert after.column("seq").to_pylist() == [r["seq"] for r in rows] + [first_seq() + 20]
