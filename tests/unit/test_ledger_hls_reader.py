"""Reading HLS for verification (`hls_reader`): the segments a verifier must check, named by
feed/rendition/seq, with their program date-time."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from orbitcast.ledger.hls_reader import parse_master, parse_media, parse_pdt_tag, walk_hls

from tests.unit.ledger_fixtures import BASE, MASTER, RENDITIONS, Edge


def test_playlist_parsing_against_the_m3u8_package() -> None:
    m3u8 = pytest.importorskip("m3u8")
    edge = Edge()
    urls = parse_master(edge.master(), MASTER)
    ref = m3u8.loads(edge.master(), uri=MASTER)
    assert urls == [p.absolute_uri for p in ref.playlists]
    refs = parse_media(edge.media("720p"), urls[1])
    ref_media = m3u8.loads(edge.media("720p"), uri=urls[1])
    assert [r.url for r in refs] == [s.absolute_uri for s in ref_media.segments]
    assert [r.program_date_time for r in refs] == [s.program_date_time for s in ref_media.segments]
    assert [(r.rendition, r.seq) for r in refs] == [("720p", s) for s in range(6)]


def test_walk_lists_every_segment_of_every_rendition_in_playlist_order() -> None:
    refs = walk_hls(MASTER, Edge().fetch)
    assert [r.name for r in refs] == [f"iss/{r}/{s}" for r in RENDITIONS for s in range(6)]


def test_a_media_playlist_given_as_the_master_is_read_as_itself() -> None:
    edge = Edge()
    url = f"{BASE}/live/iss/360p/index.m3u8"
    assert parse_master(edge.media("360p"), url) == [url]


def test_program_date_time_with_an_offset_is_the_same_instant_in_utc() -> None:
    assert parse_pdt_tag("2025-03-01T14:00:00.250+02:00") == datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
    assert parse_pdt_tag("2025-03-01T12:00:00.250Z") == datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)


def test_text_that_is_not_a_playlist_is_refused() -> None:
    with pytest.raises(ValueError, match="not an M3U8"):
        parse_master("<html>404</html>", MASTER)


def test_an_ll_hls_playlist_gives_whole_segments_only() -> None:
    """Parts, the segment in progress and gaps are no ledger entries: only whole segments are."""
    from tests.unit.test_window import S, put, whole, window

    w = window()
    for seq in (S, S + 2):  # S + 1 never arrives: a gap
        put(w, seq)
        w.add_segment(whole(seq))
    put(w, S + 3, upto=2)  # in progress
    url = f"{BASE}/live/iss/360p/index.m3u8"
    refs = parse_media(w.media("iss", "360p") or "", url)
    assert [(r.seq, r.url.rsplit("/", 1)[1]) for r in refs] == [(S, f"{S}.m4s"), (S + 2, f"{S + 2}.m4s")]
    assert all(r.program_date_time is not None for r in refs)


def test_a_recordings_segments_are_named_by_its_ledger_feed() -> None:
    """/vod/NAME/... is the recording NAME, certified as the feed vod.NAME (docs/vod.md)."""
    text = ("#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            "#EXT-X-MEDIA-SEQUENCE:900\n#EXT-X-MAP:URI=\"init.mp4?v=ab\"\n"
            "#EXT-X-PROGRAM-DATE-TIME:2026-12-04T10:00:00.000Z\n#EXTINF:2.0,\n900.m4s\n#EXTINF:2.0,\n901.m4s\n"
            "#EXT-X-ENDLIST\n")
    refs = parse_media(text, "http://127.0.0.1:8000/vod/talk/360p/index.m3u8")
    assert [(r.feed, r.rendition, r.seq) for r in refs] == [("vod.talk", "360p", 900), ("vod.talk", "360p", 901)]
