"""The byte store (pyarrow.fs) and the Parquet segment catalog."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest

from orbitcast.catalog import SCHEMA, Catalog, row_of
from orbitcast.segment import Segment
from orbitcast.store import Store, StoreError, open_store

T0 = datetime(2024, 3, 1, 8, 0, 0, tzinfo=timezone.utc)


def seg(feed: str, rendition: str, seq: int, size: int = 100) -> Segment:
    return Segment(feed, rendition, seq, seq * 2.0, 2.0, T0 + timedelta(seconds=2 * seq),
                   bytes([seq % 256]) * size)


# -- store --------------------------------------------------------------------------------
def test_put_get_list(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    path = store.put(("live", "iss", "360p", "3.m4s"), b"three")
    store.put(("live", "iss", "360p", "1.m4s"), b"one")
    store.put(("live", "iss", "240p", "1.m4s"), b"low")
    assert Path(path).read_bytes() == b"three"
    assert Path(path).is_relative_to(tmp_path / "store")
    assert store.get(("live", "iss", "360p", "3.m4s")) == b"three"
    assert store.get(("live", "iss", "240p", "1.m4s")) == b"low"
    assert store.get(("live", "iss", "360p", "2.m4s")) is None
    assert store.list(("live", "iss", "360p")) == ["1.m4s", "3.m4s"]
    assert store.list(("live", "iss")) == ["240p", "360p"]
    assert store.list(("live", "nope")) == []
    # no partial files are left behind
    assert not list((tmp_path / "store").rglob("*.partial"))


def test_put_overwrites(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.put(("k",), b"a")
    store.put(("k",), b"bb")
    assert store.get(("k",)) == b"bb"


def test_file_uri(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}/u")
    store.put(("x", "y"), b"data")
    assert (tmp_path / "u" / "x" / "y").read_bytes() == b"data"
    fs, base = open_store(f"file://{tmp_path}/u/")
    assert not base.endswith("/")


@pytest.mark.parametrize(
    "parts",
    [("..",), ("a", ".."), (".",), ("",), ("a", ""), ("a/b",), ("/etc",), ("..\\x",), ("a\\b",), ("a\x00",),
     ("live", "..", "..", "etc")],
)
def test_bad_keys_are_refused(tmp_path: Path, parts: tuple[str, ...]) -> None:
    store = Store(str(tmp_path / "s"))
    with pytest.raises(StoreError):
        store.put(parts, b"x")
    with pytest.raises(StoreError):
        store.get(parts)
    with pytest.raises(StoreError):
        store.list(parts)
    assert not (tmp_path / "x").exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_store_error_is_value_error() -> None:
    assert issubclass(StoreError, ValueError)


# -- catalog ------------------------------------------------------------------------------
def test_row_matches_schema() -> None:
    s = seg("iss", "360p", 5, 250_000)
    row = row_of(s)
    assert set(row) == set(SCHEMA.names)
    assert row["bytes"] == 250_000
    assert row["bitrate"] == 1_000_000
    assert row["digest"] == hashlib.sha256(s.data).hexdigest()
    pa.Table.from_pylist([row], schema=SCHEMA)  # fits the schema


def test_add_flush_read_round_trip(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    cat = Catalog(store, flush_every=1000)
    segments = [seg("iss", r, s, 10 + s) for r in ("360p", "240p") for s in (2, 0, 1)]
    for s in segments:
        cat.add(s)
    assert not (tmp_path / "catalog").exists()  # buffered
    assert cat.read().num_rows == 6  # read sees buffered rows too
    cat.flush()
    # partitioned by feed and the UTC date of the program date-time
    assert [p.parent.name for p in (tmp_path / "catalog").glob("feed=iss/*/*.parquet")] == ["date=2024-03-01"]

    table = Catalog(store).read()  # a fresh catalog reads what was flushed
    assert table.schema == SCHEMA
    rows = table.to_pylist()
    assert [(r["rendition"], r["seq"]) for r in rows] == [
        ("240p", 0), ("240p", 1), ("240p", 2), ("360p", 0), ("360p", 1), ("360p", 2)]
    by_key = {(s.rendition, s.seq): s for s in segments}
    for r in rows:
        s = by_key[(r["rendition"], r["seq"])]
        assert r["feed"] == "iss"
        assert r["start"] == s.start and r["duration"] == s.duration
        assert r["program_date_time"] == s.program_date_time
        assert r["bytes"] == s.size and r["bitrate"] == s.bitrate and r["digest"] == s.digest


def test_auto_flush_every_n_rows(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    cat = Catalog(store, flush_every=3)
    for s in range(7):
        cat.add(seg("iss", "360p", s))
    files = list((tmp_path / "catalog" / "feed=iss").glob("date=*/*.parquet"))
    assert len(files) == 2
    assert sum(pq.read_metadata(f).num_rows for f in files) == 6
    assert cat.read().column("seq").to_pylist() == list(range(7))
    cat.flush()
    cat.flush()  # nothing buffered: no empty file
    assert len(list((tmp_path / "catalog" / "feed=iss").glob("date=*/*.parquet"))) == 3


def test_empty_catalog_reads_empty_table(tmp_path: Path) -> None:
    cat = Catalog(Store(str(tmp_path)))
    t = cat.read()
    assert t.num_rows == 0 and t.schema == SCHEMA


def test_hive_partitions_per_feed(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    cat = Catalog(store, flush_every=1000)
    for feed, n in (("alpha", 3), ("beta", 2), ("gamma-1", 4)):
        for s in range(n):
            cat.add(seg(feed, "360p", s))
    cat.flush()
    folders = sorted(p.name for p in (tmp_path / "catalog").iterdir())
    assert folders == ["feed=alpha", "feed=beta", "feed=gamma-1"]
    for folder, n in (("feed=alpha", 3), ("feed=beta", 2), ("feed=gamma-1", 4)):
        files = list((tmp_path / "catalog" / folder).glob("date=2024-03-01/*.parquet"))
        assert len(files) == 1
        t = pq.read_table(files[0])
        assert set(t.column("feed").to_pylist()) == {folder.removeprefix("feed=")}
        assert t.num_rows == n

    # any Arrow reader sees the catalog as one Hive-partitioned dataset
    dataset = pds.dataset(str(tmp_path / "catalog"), format="parquet", partitioning="hive")
    t = dataset.to_table(filter=pds.field("feed") == "gamma-1")
    assert sorted(t.column("seq").to_pylist()) == [0, 1, 2, 3]
    assert dataset.to_table().num_rows == 9
    counts = cat.read().group_by("feed").aggregate([("seq", "count")]).to_pylist()
    assert sorted((c["feed"], c["seq_count"]) for c in counts) == [("alpha", 3), ("beta", 2), ("gamma-1", 4)]


def test_several_flushes_accumulate(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    cat = Catalog(store, flush_every=1000)
    for s in range(3):
        cat.add(seg("iss", "360p", s))
    cat.flush()
    for s in range(3, 5):
        cat.add(seg("iss", "360p", s))
    cat.flush()
    assert len(list((tmp_path / "catalog" / "feed=iss").glob("date=*/*.parquet"))) == 2
    assert Catalog(store).read().column("seq").to_pylist() == [0, 1, 2, 3, 4]
