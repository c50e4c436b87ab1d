"""Archive retention: delete the sealed blobs of old segments, keep their catalog rows.

A feed's archive is bounded by age (`hours`: segments that ended longer ago than that) and/or by
size (`bytes`: the oldest go first until the feed's blobs fit). The blobs are deleted first and
the rows marked (`removed_at`) after, so a run cut short leaves rows that the next run marks,
never blobs that nothing points at. Rows stay: the ledger keeps every leaf, and the catalog
keeps the digest, time and size that a proof of a deleted segment is checked against.

The sizes counted are the ciphertext's: each blob is its plaintext plus a 16-byte MAC. Rows
catalogued before the archive columns existed name no blobs: retention cannot find those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from .catalog import Catalog, date_of

MAC_BYTES = 16  # secretbox MAC per blob


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_s: float | None = None
    max_bytes: int | None = None

    @property
    def enabled(self) -> bool:
        return self.max_age_s is not None or self.max_bytes is not None


@dataclass(frozen=True)
class RetentionReport:
    removed_segments: int  # rows marked this run
    deleted_blobs: int
    missing_blobs: int  # already gone (a run cut short, or a remote gateway's store)
    kept_segments: int
    kept_bytes: int  # ciphertext bytes still archived
    files_merged: int


def expired(rows: pa.Table, policy: RetentionPolicy, now: datetime) -> list[int]:
    """Indices of the rows (not yet removed, with blobs) that `policy` removes at `now`:
    those that ended before now - max_age, then the oldest while the rest exceed max_bytes."""
    blob_ids = rows.column("blob_ids").to_pylist()
    live = np.array([bool(b) for b in blob_ids], dtype=bool) & rows.column("removed_at").is_null().to_numpy(
        zero_copy_only=False)
    pdt_ms = rows.column("program_date_time").cast(pa.int64()).to_numpy()
    ends = pdt_ms + np.round(rows.column("duration").to_numpy() * 1000)
    out = np.zeros(rows.num_rows, dtype=bool)
    if policy.max_age_s is not None:
        cutoff = (now - timedelta(seconds=policy.max_age_s)).timestamp() * 1000
        out |= live & (ends < cutoff)
    if policy.max_bytes is not None:
        sizes = rows.column("bytes").to_numpy() + MAC_BYTES * np.array([len(b or ()) for b in blob_ids])
        remaining = live & ~out
        excess = int(sizes[remaining].sum()) - policy.max_bytes
        if excess > 0:
            for i in np.argsort(pdt_ms, kind="stable"):
                if excess <= 0:
                    break
                if remaining[i]:
                    out[i] = True
                    excess -= int(sizes[i])
    return [int(i) for i in np.flatnonzero(out)]


def apply_retention(catalog: Catalog, feed: str, policy: RetentionPolicy,
                    delete_blob: Callable[[str], bool], now: datetime | None = None,
                    min_files: int = 1) -> RetentionReport:
    """One run for `feed`: delete what `policy` expires (`delete_blob(id)` -> False when it was
    already gone), mark those rows, and compact the catalog."""
    now = now or datetime.now(timezone.utc)
    catalog.flush()
    rows = catalog.query(feed, columns=["seq", "program_date_time", "duration", "bytes", "blob_ids", "removed_at"],
                         latest=False)
    victims = expired(rows, policy, now) if policy.enabled else []
    blob_ids = rows.column("blob_ids").to_pylist()
    removed: dict[str, datetime] = {}
    deleted = missing = 0
    hours: set[tuple[str, str]] = set()
    pdts = rows.column("program_date_time").to_pylist()
    for i in victims:
        for blob_id in blob_ids[i]:
            if delete_blob(blob_id):
                deleted += 1
            else:
                missing += 1
            removed[blob_id] = now
        hours.add((date_of(pdts[i]), pdts[i].astimezone(timezone.utc).strftime("%H")))
    merged = catalog.compact(feed, today=date_of(now), min_files=min_files, removed=removed, hours=hours)
    gone = set(victims)
    was_removed = rows.column("removed_at").to_pylist()
    kept = [i for i in range(rows.num_rows) if i not in gone and blob_ids[i] and was_removed[i] is None]
    sizes = rows.column("bytes").to_pylist()
    kept_bytes = sum(sizes[i] + MAC_BYTES * len(blob_ids[i]) for i in kept)
    return RetentionReport(len(victims), deleted, missing, len(kept), kept_bytes, merged)
