"""What `orbitcast verify` reports (`verify_report`): the table a user reads and when it is a pass."""

from __future__ import annotations

from orbitcast.ledger.verify_report import Report, SegmentResult


def test_a_report_passes_only_when_something_was_checked_and_all_of_it_passed() -> None:
    assert not Report().ok  # nothing checked proves nothing
    assert Report([SegmentResult("iss/720p/1", True)]).ok
    assert not Report([SegmentResult("iss/720p/1", True), SegmentResult("iss/720p/2", False, "x")]).ok
    assert not Report([SegmentResult("iss/720p/1", True)], fatal="no trusted head").ok


def test_the_table_names_each_segment_with_the_reason_it_failed() -> None:
    report = Report([
        SegmentResult("iss/720p/1", True),
        SegmentResult("iss/1080p/2", False, "bytes differ from the ledger"),
    ])
    lines = report.table().splitlines()
    assert lines[0].split() == ["segment", "result"]
    assert lines[1].split() == ["iss/720p/1", "ok"]
    assert lines[2] == "iss/1080p/2  FAIL: bytes differ from the ledger"
    assert lines[-1] == "1/2 segments verified"
    assert [r.segment for r in report.failures] == ["iss/1080p/2"]
