"""The order in which a packager sends a transcoder batch (orbitcast/sealed_delivery.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from orbitcast.sealed_delivery import sending_order
from orbitcast.segment import Part, Segment

WHEN = datetime(2026, 12, 7, tzinfo=timezone.utc)


def part(rung: str, seq: int, index: int) -> Part:
    return Part("iss", rung, seq, index, seq + index * 0.2, 0.2, index == 0, WHEN, f"{rung}{seq}.{index}".encode())


def segment(rung: str, seq: int) -> Segment:
    return Segment("iss", rung, seq, float(seq), 1.0, WHEN, f"{rung}{seq}".encode())


def names(items) -> list[str]:
    return [f"{i.rendition}:{i.seq}" + (f".{i.index}" if isinstance(i, Part) else "") for i in items]


def test_the_last_parts_of_every_rung_go_before_the_segments_they_close() -> None:
    """A boundary batch as the transcoder cuts it, rung after rung: the 360p part no longer
    waits behind the 720p and 480p segments' certification and sealing."""
    batch = [part("720p", 7, 4), segment("720p", 7), part("480p", 7, 4), segment("480p", 7),
             part("360p", 7, 4), segment("360p", 7)]
    runs = sending_order(batch)
    assert [(names(p), names(s)) for p, s in runs] == [
        (["720p:7.4", "480p:7.4", "360p:7.4"], ["720p:7", "480p:7", "360p:7"])]


def test_a_rung_keeps_its_own_order_a_later_seqs_part_after_the_segment() -> None:
    batch = [part("720p", 7, 4), segment("720p", 7), part("720p", 8, 0), part("480p", 7, 4), segment("480p", 7),
             part("480p", 8, 0)]
    sent = [x for p, s in sending_order(batch) for x in (*p, *s)]
    assert sorted(names(sent)) == sorted(names(batch))  # nothing lost, nothing twice
    for rung in ("720p", "480p"):
        assert names(x for x in sent if x.rendition == rung) == names(x for x in batch if x.rendition == rung)
    # each segment after its own parts, and before any part of a later seq of its rung
    assert names(sent).index("720p:7") < names(sent).index("720p:8.0")


def test_a_batch_of_parts_only_is_one_run_and_an_empty_one_none() -> None:
    batch = [part("720p", 7, 1), part("480p", 7, 1), part("360p", 7, 1)]
    assert [(names(p), s) for p, s in sending_order(batch)] == [(names(batch), [])]
    assert sending_order([]) == []
