"""The segment catalog: one Arrow row per segment, persisted as Parquet through `pyarrow.fs`.

Layout: a Hive-partitioned dataset by feed and date (the UTC date of the segment's program
date-time), `catalog/feed=NAME/date=YYYY-MM-DD/*.parquet`, so that any Arrow reader sees it as
one table (`pyarrow.dataset.dataset(root, partitioning="hive")`) and a query for a time range
opens only the days it covers. Stores written before the date level existed hold files
directly in `catalog/feed=NAME/`; they are read as they are, and compaction moves their rows
into date partitions.

Parquet files cannot be appended to, so rows are buffered and each flush writes one more small
file (`part-<ns>-<n>.parquet`). Compaction folds them into one file per hour of the day
(`hour-HH-<ns>-<n>.parquet`), which a query for a time range picks by name: an hour of
time-shift reads two files however old it is. Every file is written under a temporary name and
moved into place, so a reader never opens half a file.

Each row also says where the segment rests in the archive: the ids of its ciphertext blobs
(`blob_ids`) and the file message(s) that open them, sealed to the delivery edge (`sealed`,
nonce || box each): the catalog holds no key that opens media, only the edge's private key
does. Retention deletes old blobs and marks their rows (`removed_at`); rows are never dropped,
so the digest of every segment the ledger certified stays listed.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pyarrow.dataset as ds

from .segment import Segment
from .store import Store

SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("rendition", pa.string()),
        ("seq", pa.int64()),
        ("start", pa.float64()),
        ("duration", pa.float64()),
        ("program_date_time", pa.timestamp("ms", tz="UTC")),
        ("bytes", pa.int64()),
        ("bitrate", pa.int64()),
        ("digest", pa.string()),
        # the archive: null in rows written before it existed
        ("init", pa.string()),  # tag of the init segment it plays with (names.init_tag)
        ("blob_ids", pa.list_(pa.string())),  # its ciphertext blobs, in fragment order
        ("sealed", pa.list_(pa.binary())),  # file message(s) sealed to the edge: nonce || box
        ("removed_at", pa.timestamp("ms", tz="UTC")),  # when retention deleted its blobs
        # energy (docs/energy.md): null in rows written before it existed or with accounting off
        ("joules", pa.float64()),  # what encoding this segment of this rung cost
        ("energy_source", pa.string()),  # "rapl" (counters) or "model" (the power model)
        ("energy_error", pa.float64()),  # one standard error of `joules`, joules
    ]
)
PDT = SCHEMA.field("program_date_time").type
MAX_SEGMENT_S = 30.0  # config.segment_duration's upper bound: how far a segment reaches back
INITS = "archive-inits"  # store folder of the sealed init segments, by feed/rendition/tag
# Row groups of an hour file: a query for one rendition and a few minutes reads few of them
# (Parquet statistics of rendition and time skip the rest).
HOUR_ROW_GROUP = 2048


def date_of(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Archived:
    """Where a sealed segment (or init segment) rests and what opens it."""

    blob_ids: tuple[str, ...]
    sealed: tuple[bytes, ...]  # nonce || box, one per blob, for the edge
    init: str | None = None  # init tag, for media segments


def warm_writer() -> None:
    """The first table built from rows in a process costs about 0.2 s here (pyarrow's conversion
    imports pandas on first use): done ahead by a packager standing by, so that its first
    publish after taking the feed does not pay it."""
    pa.Table.from_pylist([], schema=SCHEMA)


def row_of(seg: Segment, archived: Archived | None = None) -> dict:
    return {
        "feed": seg.feed,
        "rendition": seg.rendition,
        "seq": seg.seq,
        "start": seg.start,
        "duration": seg.duration,
        "program_date_time": seg.program_date_time,
        "bytes": seg.size,
        "bitrate": seg.bitrate,
        "digest": seg.digest,
        "init": archived.init if archived else None,
        "blob_ids": list(archived.blob_ids) if archived else None,
        "sealed": list(archived.sealed) if archived else None,
        "removed_at": None,
        "joules": seg.energy.joules if seg.energy else None,
        "energy_source": seg.energy.source if seg.energy else None,
        "energy_error": seg.energy.error_joules if seg.energy else None,
    }


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _file_order(path: str) -> tuple[int, str]:
    # Hour files hold rows older than any flush file beside them; among each kind the name's
    # nanoseconds are the write order. Readers keep the last version of a seq.
    name = posixpath.basename(path)
    return (0 if name.startswith("hour-") else 1, name)


def _hour_covers(path: str, day: str | None, start: datetime, end: datetime | None) -> bool:
    """False for an hour file whose hour cannot hold a segment overlapping [start, end)."""
    name = posixpath.basename(path)
    if day is None or not name.startswith("hour-"):
        return True
    begins = datetime.fromisoformat(f"{day}T{name[5:7]}:00:00+00:00")
    return begins + timedelta(hours=1) > start - timedelta(seconds=MAX_SEGMENT_S) and (end is None or begins < end)


def by_feed_and_date(table: pa.Table) -> Iterator[tuple[str, str, pa.Table]]:
    """(feed, UTC date of the program date-time, its rows) for each Hive partition `table` spans."""
    dates = pc.strftime(table.column("program_date_time"), format="%Y-%m-%d")
    keyed = table.append_column("__date", dates)
    for feed in sorted(set(table.column("feed").to_pylist())):
        of_feed = keyed.filter(pc.field("feed") == feed)
        for day in sorted(set(of_feed.column("__date").to_pylist())):
            yield feed, day, of_feed.filter(pc.field("__date") == day).drop_columns(["__date"])


def keep_last(table: pa.Table) -> pa.Table:
    """One row per (rendition, seq), the last one in `table`'s order (a segment made again by
    a transcoder that took its feed over is catalogued twice; the later one is served)."""
    if table.num_rows < 2:
        return table
    order = pa.array(np.arange(table.num_rows))
    sorted_ = table.append_column("__i", order).sort_by(
        [("rendition", "ascending"), ("seq", "ascending"), ("__i", "ascending")])
    seqs = sorted_.column("seq").to_numpy()
    renditions = sorted_.column("rendition")
    last = np.ones(len(seqs), dtype=bool)
    same = seqs[1:] == seqs[:-1]
    if same.any():
        same &= pc.equal(renditions.slice(1), renditions.slice(0, len(seqs) - 1)).to_numpy(zero_copy_only=False)
        last[:-1] = ~same
    return sorted_.filter(pa.array(last)).drop_columns(["__i"])


class Catalog:
    def __init__(self, store: Store, flush_every: int = 30) -> None:
        self.store = store
        self.fs = store.fs
        self.root = store.path("catalog")
        self.flush_every = flush_every
        self._rows: list[dict] = []
        self._counter = itertools.count()

    # -- writing --------------------------------------------------------------------------
    def add(self, seg: Segment, archived: Archived | None = None) -> None:
        self._rows.append(row_of(seg, archived))
        if len(self._rows) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
        self._rows = []
        self._write_partitions(table, "part")

    def _write_partitions(self, table: pa.Table, kind: str) -> list[str]:
        """One file per (feed, date) of `table`'s rows; the paths written."""
        return [self._write(self.partition(feed, day), kind, part) for feed, day, part in by_feed_and_date(table)]

    def _write(self, folder: str, kind: str, table: pa.Table, row_group_size: int | None = None) -> str:
        self.fs.create_dir(folder, recursive=True)
        path = posixpath.join(folder, f"{kind}-{time.time_ns()}-{next(self._counter)}.parquet")
        tmp = path + ".partial"  # not a .parquet name: readers skip it
        pq.write_table(table, tmp, filesystem=self.fs, row_group_size=row_group_size)
        self.fs.move(tmp, path)
        return path

    def partition(self, feed: str, day: str) -> str:
        return self.store.path("catalog", f"feed={feed}", f"date={day}")

    # -- the files --------------------------------------------------------------------------
    def feeds(self) -> list[str]:
        sel = pafs.FileSelector(self.root, allow_not_found=True)
        names = [posixpath.basename(i.path) for i in self.fs.get_file_info(sel) if i.type == pafs.FileType.Directory]
        return sorted(n.removeprefix("feed=") for n in names if n.startswith("feed="))

    def files(self, feed: str, days: Iterable[str] | None = None) -> dict[str | None, list[str]]:
        """Parquet files of `feed` by date partition (None: the feed-level files of older
        stores), each list in write order; only the `days` asked for, if given."""
        folder = self.store.path("catalog", f"feed={feed}")
        out: dict[str | None, list[str]] = {}
        wanted = set(days) if days is not None else None
        for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            name = posixpath.basename(info.path)
            if info.type == pafs.FileType.File and name.endswith(".parquet"):
                out.setdefault(None, []).append(info.path)
            elif info.type == pafs.FileType.Directory and name.startswith("date="):
                day = name.removeprefix("date=")
                if wanted is not None and day not in wanted:
                    continue
                inner = self.fs.get_file_info(pafs.FileSelector(info.path, allow_not_found=True))
                paths = [i.path for i in inner if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
                if paths:
                    out[day] = paths
        return {k: sorted(v, key=_file_order) for k, v in out.items()}

    def _scan(self, paths: Sequence[str], filter: ds.Expression | None, columns: Sequence[str] | None) -> pa.Table:
        if not paths:
            return SCHEMA.empty_table().select(list(columns)) if columns else SCHEMA.empty_table()
        # imported here: it imports pandas (half a second), which a packager or an edge that Ray
        # started again would wait for before its first call, and the writers never use
        import pyarrow.dataset as ds

        dataset = ds.dataset(list(paths), schema=SCHEMA, format="parquet", filesystem=self.fs)
        return dataset.to_table(filter=filter, columns=list(columns) if columns else None)

    def _retrying(self, read):  # noqa: ANN001, ANN202 - a zero-argument reader
        # Compaction deletes the files it merged; a reader that listed them just before reads
        # again and finds the merged file.
        for attempt in range(3):
            try:
                return read()
            except (FileNotFoundError, OSError):
                if attempt == 2:
                    raise
                time.sleep(0.05)

    # -- reading --------------------------------------------------------------------------
    def read(self) -> pa.Table:
        """Every flushed row (plus the buffered ones), ordered by feed, rendition and seq."""

        def scan() -> pa.Table:
            paths = [p for feed in self.feeds() for ps in self.files(feed).values() for p in ps]
            return self._scan(paths, None, None)

        tables = [self._retrying(scan)]
        if self._rows:
            tables.append(pa.Table.from_pylist(self._rows, schema=SCHEMA))
        return pa.concat_tables(tables).sort_by(
            [("feed", "ascending"), ("rendition", "ascending"), ("seq", "ascending")])

    def query(self, feed: str, *, rendition: str | None = None, start: datetime | None = None,
              end: datetime | None = None, seqs: tuple[int, int] | None = None,
              columns: Sequence[str] | None = None, removed: bool = True, latest: bool = True) -> pa.Table:
        """Rows of `feed` (one `rendition`, if given) whose media overlaps [start, end) and whose
        seq is within `seqs` (inclusive), by seq. Only the date partitions the range covers
        are opened, and only `columns` are read. `removed=False` leaves out segments that
        retention deleted; `latest` keeps one row per seq (the last catalogued)."""
        days = None
        if start is not None:
            # a segment that starts before midnight and ends after it is catalogued under its start
            first = (_utc(start) - timedelta(seconds=MAX_SEGMENT_S)).date()
            last = _utc(end).date() if end is not None else datetime.now(timezone.utc).date() + timedelta(days=1)
            days = [str(first + timedelta(days=i)) for i in range(max(0, (last - first).days) + 1)]
        need = list(columns) if columns else list(SCHEMA.names)
        read_cols = list(dict.fromkeys([*need, "rendition", "seq", "program_date_time", "duration",
                                        *(["removed_at"] if not removed else [])]))
        expr = pc.field("feed") == feed
        if rendition is not None:
            expr &= pc.field("rendition") == rendition
        if seqs is not None:
            expr &= (pc.field("seq") >= seqs[0]) & (pc.field("seq") <= seqs[1])
        if end is not None:
            expr &= pc.field("program_date_time") < pa.scalar(_utc(end), type=PDT)
        if start is not None:
            reach = _utc(start) - timedelta(seconds=MAX_SEGMENT_S)
            expr &= pc.field("program_date_time") >= pa.scalar(reach, type=PDT)
        if not removed:
            expr &= pc.field("removed_at").is_null()

        def scan() -> pa.Table:
            found = self.files(feed, days).items()
            if start is None:
                paths = [p for _, ps in found for p in ps]
            else:  # hour files name their hour: those outside the range are not even opened
                paths = [p for day, ps in found for p in ps if _hour_covers(p, day, _utc(start), end and _utc(end))]
            return self._scan(paths, expr, read_cols)

        table = self._retrying(scan)
        if self._rows:  # rows not flushed yet, by the same rules
            buffered = pa.Table.from_pylist(self._rows, schema=SCHEMA).filter(expr).select(read_cols)
            table = pa.concat_tables([table, buffered])
        if start is not None and table.num_rows:
            pdt_ms = table.column("program_date_time").cast(pa.int64()).to_numpy()
            ends = pdt_ms + np.round(table.column("duration").to_numpy() * 1000)
            table = table.filter(pa.array(ends > _utc(start).timestamp() * 1000))
        table = keep_last(table) if latest else table.sort_by([("rendition", "ascending"), ("seq", "ascending")])
        return table.select(need)

    # -- compaction -------------------------------------------------------------------------
    def compact(self, feed: str, *, today: str | None = None, min_files: int = 12,
                removed: Mapping[str, datetime] | None = None,
                hours: Iterable[tuple[str, str]] = ()) -> int:
        """Fold flush files into hour files (`hour-HH-<ns>.parquet`, one per hour of each date
        partition, rows by rendition and seq); the number of files merged away.

        Today's flush files are folded once `min_files` piled up, earlier days' always, and the
        feed-level files of older stores go to their date partitions. An hour file that gets
        rows is rewritten whole (an hour of a feed: a few MB), so a growing day is never
        rewritten whole. `removed` (blob id -> when) marks the rows whose blobs retention
        deleted, in the hours given (`hours`: (date, HH)) and in every hour rewritten. Rows are
        never dropped."""
        today = today or date_of(datetime.now(timezone.utc))
        removed = dict(removed or {})
        files = self.files(feed)
        fold = list(files.get(None, []))
        for day, paths in files.items():
            if day is None:
                continue
            flushed = [p for p in paths if posixpath.basename(p).startswith("part-")]
            if flushed and (day < today or len(flushed) >= min_files):
                fold += flushed
        new = self._scan(fold, None, None)
        stamp = new.column("program_date_time")
        new_days = pc.strftime(stamp, format="%Y-%m-%d")
        new_hours = pc.strftime(stamp, format="%H")
        touched = set(zip(new_days.to_pylist(), new_hours.to_pylist())) | set(hours)
        merged = len(fold)
        for day, hour in sorted(touched):
            existing = [p for p in files.get(day, []) if posixpath.basename(p).startswith(f"hour-{hour}-")]
            mine = pc.and_(pc.equal(new_days, day), pc.equal(new_hours, hour))
            # older rows first: the sort below is stable, so versions of a seq keep their order
            table = pa.concat_tables([self._scan(existing, None, None), new.filter(mine)])
            if not table.num_rows:
                continue
            if removed:
                table = mark_removed(table, removed)
            table = table.sort_by([("rendition", "ascending"), ("seq", "ascending")])
            self._write(self.partition(feed, day), f"hour-{hour}", table, row_group_size=HOUR_ROW_GROUP)
            for p in existing:
                self.fs.delete_file(p)
            merged += len(existing)
        for p in fold:  # only once every row they hold is in an hour file
            self.fs.delete_file(p)
        return merged


def mark_removed(table: pa.Table, removed: Mapping[str, datetime]) -> pa.Table:
    """`removed_at` set on the rows one of whose blobs is in `removed` (and not set before)."""
    ids = table.column("blob_ids").to_pylist()
    before = table.column("removed_at").to_pylist()
    after = []
    for blob_ids, was in zip(ids, before):
        when = next((removed[b] for b in blob_ids or () if b in removed), None)
        after.append(was if was is not None else when)
    index = table.schema.get_field_index("removed_at")
    return table.set_column(index, SCHEMA.field("removed_at"), pa.array(after, type=PDT))


# -- the sealed init segments ---------------------------------------------------------------
def put_init(store: Store, feed: str, rendition: str, tag: str, digest: str, size: int, archived: Archived) -> None:
    """The init segment's archive record (written once per new init: a few per run)."""
    record = {"digest": digest, "size": size, "blob_ids": list(archived.blob_ids),
              "sealed": [s.hex() for s in archived.sealed]}
    store.put((INITS, feed, rendition, f"{tag}.json"), json.dumps(record).encode())


def get_init(store: Store, feed: str, rendition: str, tag: str) -> tuple[str, int, Archived] | None:
    """(digest, size, where it rests), or None when the archive has no init with that tag."""
    raw = store.get((INITS, feed, rendition, f"{tag}.json"))
    if raw is None:
        return None
    record = json.loads(raw)
    return record["digest"], int(record["size"]), Archived(
        tuple(record["blob_ids"]), tuple(bytes.fromhex(s) for s in record["sealed"]))
