"""The segment catalog: one Arrow row per segment, persisted as Parquet through `pyarrow.fs`.

Parquet files cannot be appended to, so rows are buffered and each flush writes one more file
into a Hive-partitioned folder (`catalog/feed=NAME/part-....parquet`); reading the folder as a
dataset gives the whole catalog.
"""

from __future__ import annotations

import itertools
import posixpath
import time

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

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
    ]
)


def row_of(seg: Segment) -> dict:
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
    }


class Catalog:
    def __init__(self, store: Store, flush_every: int = 30) -> None:
        self.store = store
        self.root = store.path("catalog")
        self.flush_every = flush_every
        self._rows: list[dict] = []
        self._counter = itertools.count()

    def add(self, seg: Segment) -> None:
        self._rows.append(row_of(seg))
        if len(self._rows) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
        self._rows = []
        for feed in sorted(set(table.column("feed").to_pylist())):
            part = table.filter(ds.field("feed") == feed)
            folder = posixpath.join(self.root, f"feed={feed}")
            self.store.fs.create_dir(folder, recursive=True)
            name = f"part-{time.time_ns()}-{next(self._counter)}.parquet"
            pq.write_table(part, posixpath.join(folder, name), filesystem=self.store.fs)

    def read(self) -> pa.Table:
        """Every flushed row (plus the buffered ones), ordered by feed, rendition and seq."""
        tables = []
        info = self.store.fs.get_file_info(self.root)
        if info.type != 0:  # FileType.NotFound
            dataset = ds.dataset(self.root, filesystem=self.store.fs, format="parquet", partitioning="hive", schema=SCHEMA)
            tables.append(dataset.to_table())
        if self._rows:
            tables.append(pa.Table.from_pylist(self._rows, schema=SCHEMA))
        if not tables:
            return SCHEMA.empty_table()
        return pa.concat_tables(tables).sort_by([("feed", "ascending"), ("rendition", "ascending"), ("seq", "ascending")])
