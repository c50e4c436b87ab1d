"""Time-shift windows and playlists as pure logic: `start`/`end` parsed or refused, VOD and
EVENT media playlists and the multivariant playlist rendered and parsed back with `m3u8`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import m3u8
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitcast.delivery.names import BadName
from orbitcast.delivery.timeshift import BadWindow, Listed, Window, master, media, merge, parse_instant, parse_window
from tests.unit.test_window import info

NOW = datetime(2025, 1, 31, 12, 0, 0, tzinfo=timezone.utc)
D = 1.0
TAG, OTHER = "0123456789ab", "ba9876543210"
S0 = int(NOW.timestamp() / D) - 3600  # an hour ago


def row(i: int, init: str | None = TAG, duration: float = D, shift: float = 0.0) -> Listed:
    """The i-th segment from S0; `shift` moves its media time (a restart's new timeline)."""
    t = datetime.fromtimestamp((S0 + i) * D, tz=timezone.utc)
    return Listed.at(S0 + i, (S0 + i) * D + shift, duration, t, init)


def window(first: int, last: int | None) -> Window:
    start = datetime.fromtimestamp((S0 + first) * D, tz=timezone.utc)
    return Window(start, datetime.fromtimestamp((S0 + last) * D, tz=timezone.utc) if last is not None else None)


# -- parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("2025-01-31T11:00:00Z", datetime(2025, 1, 31, 11, tzinfo=timezone.utc)),
    ("2025-01-31T11:00:00.250Z", datetime(2025, 1, 31, 11, 0, 0, 250_000, tzinfo=timezone.utc)),
    ("2025-01-31T13:00:00+02:00", datetime(2025, 1, 31, 11, tzinfo=timezone.utc)),
    ("2025-01-31T11:00:00", datetime(2025, 1, 31, 11, tzinfo=timezone.utc)),  # no offset: UTC
    ("1738321200", datetime(2025, 1, 31, 11, tzinfo=timezone.utc)),
    ("1738321200.5", datetime(2025, 1, 31, 11, 0, 0, 500_000, tzinfo=timezone.utc)),
])
def test_instants_in_iso_8601_or_unix_seconds(text: str, expected: datetime) -> None:
    assert parse_instant(text, "start") == expected


@pytest.mark.parametrize("text", ["", "yesterday", "-5", "1e9", "0x10", "2025-13-01T00:00:00Z", "2025-01-31T25:00:00Z",
                                  "99999999999999999999", "2025-01-31T11:00:00Zjunk", "12", "1999-12-31T23:59:59Z"])
def test_malformed_or_absurd_instants_are_refused(text: str) -> None:
    with pytest.raises(BadWindow):
        parse_instant(text, "start")


@given(st.text(max_size=40))
def test_any_text_is_an_instant_or_a_bad_window(text: str) -> None:
    try:
        parse_instant(text, "start")
    except BadWindow:
        pass


def q(**kw: str) -> list[tuple[str, str]]:
    return list(kw.items())


def test_windows() -> None:
    w = parse_window(q(start="2025-01-31T11:00:00Z", end="2025-01-31T11:00:06Z"), NOW, 3600)
    assert (w.start, w.end) == (NOW - timedelta(hours=1), NOW - timedelta(minutes=59, seconds=54))
    w = parse_window(q(start="1738321200"), NOW, 3600)  # EVENT: from start to the live edge
    assert w.end is None
    assert issubclass(BadWindow, BadName)  # the viewer path answers it 400


@pytest.mark.parametrize("params, reason", [
    (q(end="2025-01-31T11:00:00Z"), "end needs a start"),
    (q(start="2025-01-31T11:00:06Z", end="2025-01-31T11:00:00Z"), "end must be after start"),
    (q(start="2025-01-31T11:00:00Z", end="2025-01-31T11:00:00Z"), "end must be after start"),
    (q(start="2025-01-31T09:00:00Z", end="2025-01-31T11:00:00Z"), "longer than 3600 s"),
    (q(start="2025-01-31T10:00:00Z"), "more than 3600 s back"),
    (q(start="2025-01-31T12:00:01Z"), "start is in the future"),
    (q(start="2025-01-31T11:59:00Z", end="2025-01-31T12:01:00Z"), "end is in the future"),
    ([("start", "1738321200"), ("start", "1738321201")], "start given twice"),
])
def test_bad_windows_say_why(params: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(BadWindow, match=reason):
        parse_window(params, NOW, 3600)


def test_a_window_spells_itself_one_way_and_parses_back() -> None:
    w = parse_window(q(start="1738321200", end="2025-01-31T13:00:06+02:00"), NOW, 3600)
    assert w.query == "start=2025-01-31T11%3A00%3A00.000Z&end=2025-01-31T11%3A00%3A06.000Z"
    assert parse_window(parse_qsl(w.query), NOW, 3600) == w


# -- media playlists --------------------------------------------------------------------------
def test_a_vod_playlist_lists_the_range_with_program_date_times() -> None:
    rows = [row(i) for i in range(10, 16)]
    text = media(rows, window(10, 16), D, TAG)
    pl = m3u8.loads(text)
    assert pl.playlist_type == "vod" and pl.is_endlist
    assert pl.media_sequence == S0 + 10 and pl.target_duration == 1
    assert [s.uri for s in pl.segments] == [f"{S0 + i}.m4s" for i in range(10, 16)]
    assert [s.current_program_date_time for s in pl.segments] == [r.program_date_time for r in rows]
    assert all(s.init_section.uri == f"init.mp4?v={TAG}" for s in pl.segments)
    assert sum(s.duration for s in pl.segments) == 6.0
    assert "#EXT-X-DISCONTINUITY" not in text and "#EXT-X-GAP" not in text


def test_an_event_playlist_has_no_end() -> None:
    pl = m3u8.loads(media([row(i) for i in range(3)], window(0, None), D, TAG))
    assert pl.playlist_type == "event" and not pl.is_endlist and len(pl.segments) == 3


def test_a_missing_seq_is_a_gap_dated_where_its_media_would_be() -> None:
    rows = [row(i) for i in (0, 1, 4, 5)]
    pl = m3u8.loads(media(rows, window(0, 6), D, TAG))
    assert [(s.uri, bool(s.gap_tag)) for s in pl.segments] == [
        (f"{S0 + i}.m4s", i in (2, 3)) for i in range(6)]
    dates = [s.current_program_date_time for s in pl.segments]
    assert dates == [row(i).program_date_time for i in range(6)]
    assert pl.media_sequence == S0  # gaps keep MSN = seq


def test_a_new_init_is_a_discontinuity_with_its_map() -> None:
    rows = [row(0), row(1), row(2, init=OTHER), row(3, init=OTHER)]
    text = media(rows, window(0, 4), D, TAG)
    pl = m3u8.loads(text)
    assert [s.discontinuity for s in pl.segments] == [False, False, True, False]
    assert [s.init_section.uri for s in pl.segments] == [f"init.mp4?v={t}" for t in (TAG, TAG, OTHER, OTHER)]
    assert text.count("#EXT-X-MAP") == 2


def test_timestamps_that_jump_across_a_restart_are_a_discontinuity_not_gaps() -> None:
    # the pipeline stopped after seq 1 and came back at seq 9 on a timeline 30 s off
    rows = [row(0), row(1), row(9, shift=30.0), row(10, shift=30.0)]
    text = media(rows, window(0, 11), D, TAG)
    pl = m3u8.loads(text)
    assert [s.uri for s in pl.segments] == [f"{S0 + i}.m4s" for i in (0, 1, 9, 10)]
    assert [s.discontinuity for s in pl.segments] == [False, False, True, False]
    assert "#EXT-X-GAP" not in text
    assert pl.segments[2].current_program_date_time == row(9).program_date_time


def test_rows_without_an_init_take_the_one_before_or_the_live_one() -> None:
    pl = m3u8.loads(media([row(0, init=None), row(1, init=None)], window(0, 2), D, TAG))
    assert {s.init_section.uri for s in pl.segments} == {f"init.mp4?v={TAG}"}
    pl = m3u8.loads(media([row(0, init=OTHER), row(1, init=None)], window(0, 2), D, TAG))
    assert {s.init_section.uri for s in pl.segments} == {f"init.mp4?v={OTHER}"}
    assert not any(s.discontinuity for s in pl.segments)


def test_target_duration_covers_the_longest_segment() -> None:
    pl = m3u8.loads(media([row(0), row(1, duration=1.6)], window(0, 2), D, TAG))
    assert pl.target_duration == 2


def test_the_live_window_wins_over_the_catalog_for_one_seq() -> None:
    archived = [row(0), row(1, duration=0.9)]
    live = [row(1), row(2)]
    assert merge(archived, live) == [row(0), row(1), row(2)]


# -- the multivariant playlist ----------------------------------------------------------------
def test_every_child_uri_carries_the_window() -> None:
    w = parse_window(q(start="2025-01-31T11:00:00Z", end="2025-01-31T11:00:06Z"), NOW, 3600)
    pl = m3u8.loads(master([info("360p", 700_000), info("720p", 2_000_000)], w))
    assert [p.uri.split("?")[0] for p in pl.playlists] == ["720p/index.m3u8", "360p/index.m3u8"]
    for p in pl.playlists:
        assert parse_window(parse_qsl(urlsplit(p.uri).query), NOW, 3600) == w
