"""A subscriber's recording: on disk as segments arrive, in seq order, gaps named."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbitcast.recording import Recording
from orbitcast.sealing.blobs import SegmentMeta
from orbitcast.segment import sha256_hex

INIT = b"INIT"


def meta(seq: int, data: bytes, kind: str = "media", feed: str = "iss", rendition: str = "240p") -> SegmentMeta:
    return SegmentMeta(feed, rendition, seq, 1.0 if kind == "media" else 0.0, sha256_hex(data), len(data), kind=kind)


def seg(seq: int) -> bytes:
    return f"<segment {seq}>".encode()


def give(rec: Recording, seq: int) -> bool:
    return rec.add(meta(seq, seg(seq)), seg(seq))


def give_init(rec: Recording) -> bool:
    return rec.add(meta(0, INIT, kind="init"), INIT)


@pytest.fixture
def rec(tmp_path: Path) -> Recording:
    return Recording("iss", "240p", tmp_path / "out.mp4")


def test_each_segment_is_on_disk_as_soon_as_it_arrives_in_order(rec: Recording) -> None:
    give_init(rec)
    assert rec.path.read_bytes() == INIT
    for seq in (10, 11, 12):
        give(rec, seq)
        # No close needed: a process killed now leaves exactly this file.
        assert rec.path.read_bytes() == INIT + b"".join(seg(s) for s in range(10, seq + 1))
    assert rec.written == [10, 11, 12] and rec.duration() == 3.0 and rec.size == len(rec.path.read_bytes())


def test_segments_before_the_init_segment_wait_for_it(rec: Recording) -> None:
    give(rec, 5)
    give(rec, 6)
    assert not rec.path.exists() and not rec.has_init and rec.media_count == 2
    give_init(rec)
    assert rec.path.read_bytes() == INIT + seg(5) + seg(6)


def test_a_segment_out_of_order_is_put_in_its_place(rec: Recording) -> None:
    give_init(rec)
    give(rec, 1)
    give(rec, 3)  # 2 is late: 3 waits for it
    assert rec.path.read_bytes() == INIT + seg(1)
    give(rec, 2)
    assert rec.path.read_bytes() == INIT + seg(1) + seg(2) + seg(3) and rec.gaps == []


def test_a_missing_segment_is_given_up_as_a_gap_after_reorder_more(rec: Recording) -> None:
    give_init(rec)
    give(rec, 1)
    for seq in (3, 4):
        give(rec, seq)
        assert rec.written == [1]  # still waiting for 2
    give(rec, 5)  # reorder (3) segments wait: 2 is given up
    assert rec.written == [1, 3, 4, 5] and rec.gaps == [(2, 2)]
    assert not give(rec, 2)  # too late for its place in the file
    assert rec.late == 1 and rec.path.read_bytes() == INIT + b"".join(seg(s) for s in (1, 3, 4, 5))


def test_close_writes_what_waits_and_names_the_gaps(rec: Recording) -> None:
    give_init(rec)
    give(rec, 1)
    give(rec, 4)
    rec.close()
    assert rec.written == [1, 4] and rec.gaps == [(2, 3)]
    assert rec.path.read_bytes() == INIT + seg(1) + seg(4)


def test_repeats_and_other_feeds_are_not_kept(rec: Recording) -> None:
    give_init(rec)
    assert give(rec, 1)
    assert not give(rec, 1)
    assert not rec.add(meta(2, seg(2), rendition="720p"), seg(2))
    assert not rec.add(meta(2, seg(2), feed="mars"), seg(2))
    assert not give_init(rec)  # a resent init segment is not written twice
    assert rec.path.read_bytes() == INIT + seg(1)


def test_close_without_an_init_segment_writes_nothing(rec: Recording) -> None:
    give(rec, 1)
    rec.close()
    assert not rec.has_init and not rec.path.exists()
