"""Archive retention: old sealed blobs deleted (by age, or oldest first over a byte limit), their
catalog rows kept and marked, nothing else touched, and the ledger's proofs of deleted segments
still checked against what the catalog keeps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from nacl.public import Box
from nacl.signing import SigningKey

from orbitcast.archive import ArchiveReader, archived_of
from orbitcast.catalog import Catalog
from orbitcast.gateway.blobstore import BlobStore
from orbitcast.gateway.errors import NotFound
from orbitcast.ledger.leaf import LeafFields
from orbitcast.ledger.log import FeedLedger
from orbitcast.ledger.merkle import leaf_hash
from orbitcast.ledger.proofs import verify_inclusion
from orbitcast.retention import MAC_BYTES, RetentionPolicy, apply_retention
from orbitcast.sealed_delivery import meta_of
from orbitcast.sealing.keys import generate_key_pair
from orbitcast.sealing.sealer import SegmentSealer
from orbitcast.segment import Segment
from orbitcast.store import Store

EDGE = "*ORBEDGE"
D = 2.0
T0 = datetime(2024, 5, 1, 23, 50, tzinfo=timezone.utc)  # archives run across midnight


class SealedArchive:
    """A packager's archive in miniature: segments sealed to the edge, blobs in the store's blob
    folder (where the embedded gateway keeps them), a row per segment in the catalog."""

    def __init__(self, root: Path, max_blob_bytes: int = 1 << 20) -> None:
        self.store = Store(str(root))
        self.blobs = BlobStore.from_uri(self.store.path("threema-blobs"))
        self.catalog = Catalog(self.store, flush_every=10)
        self.sender, self.edge = generate_key_pair(), generate_key_pair()
        self.sealer = SegmentSealer(self.sender, max_blob_bytes=max_blob_bytes)
        self.rows: dict[tuple[str, str, int], tuple[Segment, tuple[str, ...]]] = {}

    def add(self, seg: Segment, init: str | None = "0123456789ab") -> tuple[str, ...]:
        sealed = self.sealer.seal_segment(seg.data, meta_of(seg), {EDGE: self.edge.public}, self.blobs.put)
        self.catalog.add(seg, archived_of(sealed, EDGE, init))
        self.rows[(seg.feed, seg.rendition, seg.seq)] = (seg, sealed.blob_ids)
        return sealed.blob_ids

    def reader(self, cache_bytes: int = 1 << 20) -> ArchiveReader:
        return ArchiveReader(Catalog(self.store), lambda: Box(self.edge.private, self.sender.public), self.blobs.get,
                             D, cache_bytes)

    def delete(self, blob_id: str) -> bool:
        try:
            self.blobs.delete(blob_id)
            return True
        except NotFound:
            return False


S0 = int(T0.timestamp() / D)  # seqs count segment durations from the epoch, as the pipeline's do


def segment(i: int, rendition: str = "360p", feed: str = "iss", size: int = 1000) -> Segment:
    """The i-th segment from T0."""
    return Segment(feed, rendition, S0 + i, (S0 + i) * D, D, T0 + timedelta(seconds=i * D),
                   bytes([(i * 7 + len(rendition)) % 256]) * size)


def filled(tmp_path: Path, n: int, feeds: tuple[str, ...] = ("iss",)) -> SealedArchive:
    """n segments of 2 s per rendition."""
    a = SealedArchive(tmp_path)
    for feed in feeds:
        for seq in range(n):
            for rendition in ("360p", "240p"):
                a.add(segment(seq, rendition, feed))
    a.catalog.flush()
    return a


def end_of(seq: int) -> datetime:
    """When segment `seq` (a seq, not an index) ends."""
    return T0 + timedelta(seconds=(seq - S0 + 1) * D)


def test_age_limit_deletes_the_old_blobs_and_nothing_else(tmp_path: Path) -> None:
    a = filled(tmp_path, n=720, feeds=("iss", "moon"))  # 24 minutes
    now = end_of(S0 + 719)
    report = apply_retention(a.catalog, "iss", RetentionPolicy(max_age_s=600), a.delete, now=now)
    cutoff = now - timedelta(minutes=10)
    old = {k for k, (seg, _) in a.rows.items() if k[0] == "iss" and end_of(seg.seq) < cutoff}
    assert len(old) == 2 * 419  # ended more than ten minutes before `now`
    assert report.removed_segments == len(old) and report.deleted_blobs == len(old) and report.missing_blobs == 0
    for key, (_, blob_ids) in a.rows.items():
        assert all(a.blobs.exists(b) for b in blob_ids) == (key not in old), key
    # every row is kept; exactly the deleted ones are marked
    rows = Catalog(a.store).read().to_pylist()
    assert len(rows) == len(a.rows)
    marked = {(r["feed"], r["rendition"], r["seq"]) for r in rows if r["removed_at"] is not None}
    assert marked == old
    assert all(r["removed_at"] == now for r in rows if r["removed_at"] is not None)
    # a query for playable media leaves them out; the archive cannot open them any more
    live = Catalog(a.store).query("iss", rendition="360p", start=T0, end=now, removed=False, columns=["seq"])
    assert live.column("seq").to_pylist() == sorted(s for (f, r, s) in a.rows if f == "iss" and r == "360p"
                                                    and (f, r, s) not in old)
    reader = a.reader()
    assert reader.segment("iss", "360p", S0) is None
    assert reader.segment("iss", "360p", S0 + 719) == segment(719).data
    assert reader.segment("moon", "360p", S0) == segment(0, feed="moon").data
    # the next run finds nothing new to delete
    again = apply_retention(a.catalog, "iss", RetentionPolicy(max_age_s=600), a.delete, now=now)
    assert (again.removed_segments, again.deleted_blobs) == (0, 0)
    assert again.kept_segments == report.kept_segments == 2 * 720 - len(old)


def test_byte_limit_deletes_the_oldest_first(tmp_path: Path) -> None:
    a = filled(tmp_path, n=50)
    each = 1000 + MAC_BYTES
    limit = 30 * each + 500  # room for 30 segments and a half
    report = apply_retention(a.catalog, "iss", RetentionPolicy(max_bytes=limit), a.delete, now=end_of(S0 + 60))
    assert report.kept_segments == 30 and report.kept_bytes == 30 * each <= limit
    rows = Catalog(a.store).read().to_pylist()
    kept = sorted((r["seq"], r["rendition"]) for r in rows if r["removed_at"] is None)
    gone = sorted((r["seq"], r["rendition"]) for r in rows if r["removed_at"] is not None)
    assert max(gone)[0] <= min(kept)[0]  # oldest first
    assert len(rows) == 100


def test_a_run_cut_short_is_finished_by_the_next(tmp_path: Path) -> None:
    a = filled(tmp_path, n=20)
    for i in range(5):  # deleted, but the run stopped before it marked the rows
        for b in a.rows[("iss", "360p", S0 + i)][1]:
            a.blobs.delete(b)
    report = apply_retention(a.catalog, "iss", RetentionPolicy(max_age_s=D * 10), a.delete, now=end_of(S0 + 19))
    assert report.removed_segments == 2 * 9 and report.missing_blobs == 5 and report.deleted_blobs == 2 * 9 - 5


def test_without_limits_only_compaction_runs(tmp_path: Path) -> None:
    a = filled(tmp_path, n=400)  # across midnight
    files = len(list((tmp_path / "catalog").rglob("*.parquet")))
    report = apply_retention(a.catalog, "iss", RetentionPolicy(), a.delete, now=end_of(S0 + 400) + timedelta(days=1))
    assert report.removed_segments == 0 and report.files_merged == files
    assert len(list((tmp_path / "catalog").rglob("*.parquet"))) == 2  # one per day
    assert all(a.blobs.exists(b) for _, ids in a.rows.values() for b in ids)
    assert Catalog(a.store).read().num_rows == 800


def test_proofs_of_deleted_segments_still_verify(tmp_path: Path) -> None:
    a = filled(tmp_path, n=100)
    ledger = FeedLedger("iss", SigningKey.generate())
    for (_, _, _), (seg, _) in sorted(a.rows.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        ledger.append(seg)
    head = ledger.sign_head(1_700_000_000_000)
    apply_retention(a.catalog, "iss", RetentionPolicy(max_age_s=60), a.delete, now=end_of(S0 + 99))
    removed = [r for r in Catalog(a.store).read().to_pylist() if r["removed_at"] is not None]
    assert len(removed) == 2 * 69  # ended before now - 60 s
    for row in removed:
        # the blob is gone; what the catalog keeps is what the ledger's leaf binds
        assert not any(a.blobs.exists(b) for b in row["blob_ids"])
        leaf = LeafFields.of(row["feed"], row["rendition"], row["seq"], row["program_date_time"], row["bytes"],
                             row["digest"]).encode()
        proof = ledger.proof(row["rendition"], row["seq"])
        assert bytes.fromhex(proof["leaf"]) == leaf
        verify_inclusion(proof["leaf_index"], head.tree_size, leaf_hash(leaf),
                         [bytes.fromhex(h) for h in proof["audit_path"]], head.root_hash)
