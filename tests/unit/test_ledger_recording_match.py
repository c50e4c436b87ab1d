"""Matching a recording against the ledger (`recording_match`): a file as `orbitcast receive`
writes it (init, then the segments of one rendition), on the synthetic feed of
`ledger_fixtures`."""

from __future__ import annotations

import pytest

from orbitcast.ledger.recording_match import box_boundaries, verify_recording, verify_recording_url

from tests.unit.ledger_fixtures import BASE, INIT, KEY, Edge


def test_recording_passes_and_each_segment_is_named() -> None:
    edge = Edge()
    entries, head = edge.entries_and_head()
    data = edge.recording("720p", range(1, 6))  # joined late: seq 0 not recorded, not a failure
    report = verify_recording(data, entries, head, KEY.verify_key)
    assert report.ok, report.table()
    assert [r.segment for r in report.results] == [f"iss/720p/{s}" for s in range(1, 6)]


def test_the_init_segment_ends_where_the_first_segment_starts() -> None:
    edge = Edge()
    data = edge.recording("720p", range(2))
    init_end, bounds = box_boundaries(data)
    assert init_end == len(INIT)
    seg0 = len(edge.segments[("720p", 0)].data)
    assert {len(INIT), len(INIT) + seg0, len(data)} <= set(bounds)
    assert all(b >= init_end for b in bounds)


@pytest.mark.parametrize("victim", [1, 3, 5])
def test_recording_with_a_changed_byte_names_that_segment(victim: int) -> None:
    edge = Edge()
    entries, head = edge.entries_and_head()
    good = edge.recording("1080p", range(1, 6))
    edge.tamper("1080p", victim, at=len(edge.segments[("1080p", victim)].data) // 2)
    bad = edge.recording("1080p", range(1, 6))
    assert len(bad) == len(good) and bad != good
    report = verify_recording(bad, entries, head, KEY.verify_key)
    assert [r.segment for r in report.failures] == [f"iss/1080p/{victim}"], report.table()
    assert sum(r.ok for r in report.results) == 4


def test_recording_missing_and_truncated_segments() -> None:
    edge = Edge()
    entries, head = edge.entries_and_head()
    data = INIT + b"".join(edge.segments[("360p", s)].data for s in (0, 1, 3, 4))
    data += edge.segments[("360p", 5)].data[:-10]
    report = verify_recording(data, entries, head, KEY.verify_key)
    fails = {r.segment: r.reason for r in report.failures}
    assert fails == {"iss/360p/2": "missing from the recording",
                     "iss/360p/5": "recording ends inside this segment (truncated)"}, report.table()


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x04" + b"x" * 20,  # a box size smaller than its header: not a box at all
    b"\x7f\xff\xff\xffmdat" + b"x" * 20,  # a box that claims more bytes than the file holds
])
def test_bytes_after_the_last_segment_that_are_no_box_are_named_by_range(garbage: bytes) -> None:
    edge = Edge()
    entries, head = edge.entries_and_head()
    good = edge.recording("720p", range(6))
    report = verify_recording(good + garbage, entries, head, KEY.verify_key)
    assert [r.segment for r in report.results if r.ok] == [f"iss/720p/{s}" for s in range(6)]
    assert [(r.segment, r.reason) for r in report.failures] == [
        (f"bytes {len(good)}-{len(good) + len(garbage)}", "match no ledger entry")
    ], report.table()


def test_recording_against_entries_that_do_not_match_the_head() -> None:
    edge = Edge()
    entries, head = edge.entries_and_head()
    entries = list(entries)
    entries[3] = entries[4]
    report = verify_recording(edge.recording("720p", range(6)), entries, head, KEY.verify_key)
    assert not report.ok and "signed root" in report.fatal


def test_a_file_with_no_media_segments_does_not_pass() -> None:
    edge = Edge()
    entries, head = edge.entries_and_head()
    report = verify_recording(INIT, entries, head, KEY.verify_key)
    assert not report.ok and "no media segments" in report.fatal


def test_recording_through_the_ledger_routes() -> None:
    edge = Edge()
    report = verify_recording_url(edge.recording("720p", range(6)), f"{BASE}/ledger/iss", edge.fetch, KEY.verify_key)
    assert report.ok and len(report.results) == 6, report.table()
    assert any("/ledger/iss/entries?start=0&end=18" in u for u in edge.requests)
    edge.tamper("720p", 0, at=30)
    report = verify_recording_url(edge.recording("720p", range(6)), f"{BASE}/ledger/iss/sth", edge.fetch, KEY.verify_key)
    assert [r.segment for r in report.failures] == ["iss/720p/0"], report.table()


def test_an_unreachable_ledger_is_fatal() -> None:
    edge = Edge()
    report = verify_recording_url(edge.recording("720p", range(6)), f"{BASE}/ledger/nosuchfeed", edge.fetch, KEY.verify_key)
    assert not report.ok and "cannot read the ledger" in report.fatal and "404" in report.fatal
