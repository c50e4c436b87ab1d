"""The archive read back for time-shift: sealed blobs opened with the edge's key on demand, every
check a live segment gets, and a cache bounded in bytes."""

from __future__ import annotations

from pathlib import Path

from nacl.public import Box

from orbitcast.archive import ByteLRU, archived_of
from orbitcast.catalog import put_init
from orbitcast.delivery.names import init_tag
from orbitcast.sealed_delivery import init_meta, meta_of
from orbitcast.sealing.keys import generate_key_pair
from tests.unit.test_retention import EDGE, S0, SealedArchive, segment


def test_a_sealed_segment_opens_with_the_edge_key(tmp_path: Path) -> None:
    a = SealedArchive(tmp_path)
    for i in range(5):
        a.add(segment(i))
    a.catalog.flush()
    reader = a.reader()
    assert [reader.segment("iss", "360p", S0 + i) for i in range(5)] == [segment(i).data for i in range(5)]
    assert reader.segment("iss", "360p", S0 + 5) is None  # never archived
    assert reader.segment("iss", "720p", S0) is None
    # at rest: ciphertext only
    blobs = [p.read_bytes() for p in (tmp_path / "threema-blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 5 and not any(segment(i).data[:64] in b for b in blobs for i in range(5))


def test_fragments_are_joined_and_checked(tmp_path: Path) -> None:
    a = SealedArchive(tmp_path, max_blob_bytes=316)  # 300 bytes a blob: four fragments
    ids = a.add(segment(0))
    a.catalog.flush()
    assert len(ids) == 4
    assert a.reader().segment("iss", "360p", S0) == segment(0).data


def test_a_damaged_blob_is_not_served(tmp_path: Path) -> None:
    a = SealedArchive(tmp_path)
    (blob_id,) = a.add(segment(0))
    a.catalog.flush()
    path = next((tmp_path / "threema-blobs").rglob(blob_id))
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    reader = a.reader()
    assert reader.segment("iss", "360p", S0) is None
    assert reader.counters["failed"] == 1


def test_a_row_that_names_another_segments_message_is_not_served(tmp_path: Path) -> None:
    a = SealedArchive(tmp_path)
    other = segment(1)
    sealed = a.sealer.seal_segment(other.data, meta_of(other), {EDGE: a.edge.public}, a.blobs.put)
    a.catalog.add(segment(0), archived_of(sealed, EDGE))  # row of seq S0, messages of S0 + 1
    a.catalog.flush()
    reader = a.reader()
    assert reader.segment("iss", "360p", S0) is None
    assert reader.counters["mismatched"] == 1


def test_only_the_edge_key_opens_it(tmp_path: Path) -> None:
    a = SealedArchive(tmp_path)
    a.add(segment(0))
    a.catalog.flush()
    stranger = generate_key_pair()
    reader = a.reader()
    reader._box = lambda: Box(stranger.private, a.sender.public)  # noqa: SLF001 - a key that is not the edge's
    assert reader.segment("iss", "360p", S0) is None


def test_opened_segments_are_cached_within_the_byte_limit(tmp_path: Path) -> None:
    a = SealedArchive(tmp_path)
    ids = [a.add(segment(i)) for i in range(4)]
    a.catalog.flush()
    reader = a.reader(cache_bytes=2500)  # two 1000-byte segments
    for i in range(4):
        assert reader.segment("iss", "360p", S0 + i) == segment(i).data
    assert reader.cache.size <= 2500 and len(reader.cache) == 2
    for blob_ids in ids:  # the blobs go away: what is cached is still served, the rest is not
        for b in blob_ids:
            a.blobs.delete(b)
    assert reader.segment("iss", "360p", S0 + 3) == segment(3).data
    assert reader.segment("iss", "360p", S0 + 2) == segment(2).data
    assert reader.segment("iss", "360p", S0) is None
    assert reader.counters["cache_hits"] == 2


def test_init_segments_of_earlier_runs_open_by_tag(tmp_path: Path) -> None:
    a = SealedArchive(tmp_path)
    init = b"\x00\x00\x00\x18ftypiso6" + bytes(200)
    meta = init_meta("iss", "360p", init)
    sealed = a.sealer.seal_segment(init, meta, {EDGE: a.edge.public}, a.blobs.put)
    put_init(a.store, "iss", "360p", init_tag(init), meta.digest, meta.size, archived_of(sealed, EDGE))
    reader = a.reader()
    assert reader.init("iss", "360p", init_tag(init)) == init
    assert reader.init("iss", "360p", "0" * 12) is None


def test_byte_lru_evicts_the_least_recently_used() -> None:
    lru = ByteLRU(10)
    lru.put(("a",), b"1234")
    lru.put(("b",), b"1234")
    assert lru.get(("a",)) == b"1234"  # a is now the most recent
    lru.put(("c",), b"1234")
    assert lru.get(("b",)) is None and lru.get(("a",)) is not None and lru.size == 8
    lru.put(("big",), b"x" * 11)  # larger than the whole cache: not kept
    assert lru.get(("big",)) is None and lru.size == 8
