"""Reading the archive back: segments and init segments opened from their sealed blobs.

What rests is ciphertext: each blob is sealed under its own random key, and the key travels
only in the file message sealed to the delivery edge, which the catalog keeps beside the row
(`catalog.Archived`). Only a holder of the edge's private key opens it, so the edge does, on
demand, for time-shift viewing; the Delivery replicas ask it (docs/delivery.md).

Every opened segment is checked as a live one is: the box, the blob's MAC and size, the
metadata against the catalog row asked for (feed, rendition, seq, digest), the digest of the
whole. Opened bytes are kept in an LRU bounded in bytes, so viewers of the same range cost one
opening.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from nacl.public import Box

from .catalog import Archived, Catalog, get_init
from .sealing.blobs import SegmentMeta, fragment_position, open_file_blob, verify_whole
from .sealing.envelope import NONCE_BYTES, open_with_box
from .sealing.errors import BadMessage
from .sealing.messages import FileMessage, decode_message
from .sealing.sealer import SealedSegment

log = logging.getLogger(__name__)
BLOCK = 64  # seqs whose catalog rows one lookup reads: a player reads on from where it is
REQUERY_S = 1.0  # a block that lacked a seq is read again at most this often


def archived_of(sealed: SealedSegment, edge: str, init: str | None = None) -> Archived:
    """What the catalog keeps of a sealed segment: its blob ids and the file messages sealed
    to the edge (one per fragment, in fragment order)."""
    messages = sorted((o for o in sealed.outgoing if o.to_id == edge), key=lambda o: o.part)
    return Archived(tuple(sealed.blob_ids), tuple(o.envelope.nonce + o.envelope.box for o in messages), init)


class ByteLRU:
    """Least recently used bytes, at most `limit` bytes in all (0: nothing is kept)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple, data: bytes) -> None:
        if len(data) > self.limit:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._items[key] = data
            self.size += len(data)
            while self.size > self.limit:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def open_sealed(box: Box, sealed: Sequence[bytes], fetch_blob: Callable[[str], bytes]) -> tuple[SegmentMeta, bytes]:
    """Open the file message(s) of one archived segment and its blob(s); (meta, bytes), the
    bytes checked against the digest and size the messages state. A `SealingError` otherwise."""
    if not sealed:
        raise BadMessage("no sealed file message")
    pieces: dict[int, bytes] = {}
    meta: SegmentMeta | None = None
    count = 1
    for item in sealed:
        opened = open_with_box(box, item[:NONCE_BYTES], item[NONCE_BYTES:])
        message = decode_message(opened.type, opened.body)
        if not isinstance(message, FileMessage):
            raise BadMessage("an archived message is not a file message")
        this = SegmentMeta.from_x(message.x)
        if meta is not None and (this.feed, this.rendition, this.seq, this.digest) != (
                meta.feed, meta.rendition, meta.seq, meta.digest):
            raise BadMessage("the fragments of one archived segment disagree")
        meta = this
        part, count = fragment_position(message.x) or (1, 1)
        pieces[part] = open_file_blob(message, fetch_blob(message.blob_id))
    assert meta is not None
    if sorted(pieces) != list(range(1, count + 1)):
        raise BadMessage("fragments of an archived segment are missing")
    return meta, verify_whole(b"".join(pieces[i] for i in range(1, count + 1)), meta)


class ArchiveReader:
    """Archived segments by (feed, rendition, seq) and init segments by tag, opened on demand.

    `box` gives the NaCl box of the edge's private key and the sender's public key; `fetch_blob`
    reads a ciphertext blob by id. Thread-safe (the edge answers many callers at once)."""

    def __init__(self, catalog: Catalog, box: Callable[[], Box], fetch_blob: Callable[[str], bytes],
                 segment_duration: float, cache_bytes: int) -> None:
        self.catalog = catalog
        self._box = box
        self._fetch = fetch_blob
        self.segment_duration = segment_duration
        self.cache = ByteLRU(cache_bytes)
        self.counters: Counter[str] = Counter()
        self._blocks: OrderedDict[tuple[str, str, int], tuple[float, dict[int, tuple[str, tuple[bytes, ...]]]]] = OrderedDict()
        self._lock = threading.Lock()

    def segment(self, feed: str, rendition: str, seq: int) -> bytes | None:
        key = ("media", feed, rendition, seq)
        data = self.cache.get(key)
        if data is not None:
            self.counters["cache_hits"] += 1
            return data
        record = self._record(feed, rendition, seq)
        if record is None:
            self.counters["not_archived"] += 1
            return None
        digest, sealed = record
        data = self._open(sealed, (feed, rendition, seq, digest))
        if data is not None:
            self.cache.put(key, data)
        return data

    def init(self, feed: str, rendition: str, tag: str) -> bytes | None:
        key = ("init", feed, rendition, tag)
        data = self.cache.get(key)
        if data is not None:
            return data
        found = get_init(self.catalog.store, feed, rendition, tag)
        if found is None:
            self.counters["not_archived"] += 1
            return None
        digest, _, archived = found
        data = self._open(archived.sealed, (feed, rendition, -1, digest))
        if data is not None:
            self.cache.put(key, data)
        return data

    def _open(self, sealed: Sequence[bytes], expect: tuple[str, str, int, str]) -> bytes | None:
        started = time.perf_counter()
        try:
            meta, data = open_sealed(self._box(), sealed, self._fetch)
        except Exception:  # noqa: BLE001 - a blob deleted or damaged at rest: not servable, counted
            log.warning("archived %s/%s/%s does not open", *expect[:3], exc_info=True)
            self.counters["failed"] += 1
            return None
        if (meta.feed, meta.rendition, meta.seq, meta.digest) != expect:
            # a row that names another segment's messages (a damaged or edited catalog)
            self.counters["mismatched"] += 1
            return None
        self.counters["opened"] += 1
        self.counters["open_us"] += int((time.perf_counter() - started) * 1e6)
        return data

    def _record(self, feed: str, rendition: str, seq: int) -> tuple[str, tuple[bytes, ...]] | None:
        """(digest, sealed messages) of the last catalogued, not removed, version of `seq`."""
        block = (feed, rendition, seq // BLOCK)
        with self._lock:
            cached = self._blocks.get(block)
        if cached is not None:
            read_at, records = cached
            if seq in records or time.monotonic() - read_at < REQUERY_S:
                return records.get(seq)
        lo = block[2] * BLOCK
        hi = lo + BLOCK - 1
        # seq = floor(t / D) on a timeline that starts at the wall clock: the days to open
        # are those around lo * D (a day either side covers any clock offset)
        t = datetime.fromtimestamp(lo * self.segment_duration, tz=timezone.utc)
        rows = self.catalog.query(feed, rendition=rendition, seqs=(lo, hi), removed=False,
                                  start=t - timedelta(days=1), end=t + timedelta(days=1),
                                  columns=["seq", "digest", "sealed"])
        records = {s: (d, tuple(x)) for s, d, x in zip(rows.column("seq").to_pylist(), rows.column("digest").to_pylist(),
                                                       rows.column("sealed").to_pylist()) if x}
        with self._lock:
            self._blocks[block] = (time.monotonic(), records)
            self._blocks.move_to_end(block)
            while len(self._blocks) > 256:
                self._blocks.popitem(last=False)
        return records.get(seq)
