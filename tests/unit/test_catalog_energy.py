"""The catalog's energy columns: a segment's joules, their source and error are kept; rows
without them, and files written before the columns existed, read back as null."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from orbitcast.catalog import SCHEMA, Archived, Catalog
from orbitcast.segment import Segment, SegmentEnergy
from orbitcast.store import Store

T0 = datetime(2024, 3, 2, 10, tzinfo=timezone.utc)
ENERGY = ("joules", "energy_source", "energy_error")


def seg(seq: int, rendition: str = "360p", energy: SegmentEnergy | None = None) -> Segment:
    return Segment("iss", rendition, seq, float(seq), 1.0, T0 + timedelta(seconds=seq), seq.to_bytes(8, "big"),
                   energy=energy)


def archived(seq: int) -> Archived:
    return Archived((f"{seq:032x}",), (bytes([seq % 256]) * 40,), "abcdef012345")


def test_energy_columns_are_the_last_and_nullable() -> None:
    assert SCHEMA.names[-3:] == list(ENERGY)
    assert all(SCHEMA.field(n).nullable for n in ENERGY)


def test_a_segments_joules_are_kept_and_a_row_without_them_reads_null(tmp_path: Path) -> None:
    cat = Catalog(Store(str(tmp_path)))
    cat.add(seg(1, energy=SegmentEnergy(1.25, "model", 0.625)), archived(1))
    cat.add(seg(2), archived(2))  # accounting off
    cat.add(seg(3, "240p", SegmentEnergy(0.5, "rapl", 0.025)), archived(3))
    cat.flush()
    rows = {(r["rendition"], r["seq"]): r for r in Catalog(Store(str(tmp_path))).read().to_pylist()}
    assert (rows[("360p", 1)]["joules"], rows[("360p", 1)]["energy_source"], rows[("360p", 1)]["energy_error"]) \
        == (1.25, "model", 0.625)
    assert (rows[("240p", 3)]["joules"], rows[("240p", 3)]["energy_source"]) == (0.5, "rapl")
    assert [rows[("360p", 2)][n] for n in ENERGY] == [None, None, None]
    q = cat.query("iss", rendition="360p", columns=["seq", "joules", "energy_source"])
    assert q.to_pylist() == [{"seq": 1, "joules": 1.25, "energy_source": "model"},
                             {"seq": 2, "joules": None, "energy_source": None}]


def test_files_written_before_the_energy_columns_read_as_null_and_compact(tmp_path: Path) -> None:
    before = pa.schema([f for f in SCHEMA if f.name not in ENERGY])
    old_rows = []
    for s in range(5):
        row = {f.name: None for f in before}
        row.update(feed="iss", rendition="360p", seq=s, start=float(s), duration=1.0,
                   program_date_time=T0 + timedelta(seconds=s), bytes=8, bitrate=64, digest="ab" * 32)
        old_rows.append(row)
    folder = tmp_path / "catalog" / "feed=iss" / "date=2024-03-02"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(old_rows, schema=before), folder / "part-1-0.parquet")
    cat = Catalog(Store(str(tmp_path)))
    cat.add(seg(5, energy=SegmentEnergy(2.0, "model", 1.0)), archived(5))
    cat.flush()
    t = cat.read()
    assert t.schema == SCHEMA and t.num_rows == 6
    assert t.column("joules").to_pylist() == [None] * 5 + [2.0]
    q = cat.query("iss", start=T0, end=T0 + timedelta(seconds=10), columns=["seq", "energy_source"])
    assert q.column("energy_source").to_pylist() == [None] * 5 + ["model"]
    assert cat.compact("iss", today="2024-03-03") == 2  # old and new files into one hour file
    after = Catalog(Store(str(tmp_path))).read()
    assert after.column("seq").to_pylist() == list(range(6))
    assert after.column("energy_error").to_pylist() == [None] * 5 + [1.0]
