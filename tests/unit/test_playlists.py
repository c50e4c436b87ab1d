"""HLS playlist text, parsed back with the `m3u8` package."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import m3u8
import pytest

from orbitcast.delivery.playlists import HLS_VERSION, RenditionInfo, iso_ms, master_playlist, media_playlist
from orbitcast.segment import Segment

T0 = datetime(2024, 5, 17, 12, 30, 0, 250000, tzinfo=timezone.utc)

RUNGS = [
    RenditionInfo("360p", 640, 360, 720_000, 690_000, "avc1.64001e,mp4a.40.2", 30.0),
    RenditionInfo("720p", 1280, 720, 2_628_000, 2_500_123, "avc1.64001f,mp4a.40.2", 29.97),
    RenditionInfo("480p", 854, 480, 1_328_000, 1_200_456, "avc1.64001e,mp4a.40.2", 25.0),
]


def segs(seqs: Iterable[int], d: float = 2.0, durations: dict[int, float] | None = None,
         t0: datetime = T0) -> list[Segment]:
    durations = durations or {}
    return [
        Segment("iss", "360p", s, s * d, durations.get(s, d), t0 + timedelta(seconds=s * d), f"seg{s}".encode())
        for s in seqs
    ]


# -- multivariant ---------------------------------------------------------------------------
def test_master_playlist_attributes() -> None:
    text = master_playlist(RUNGS)
    assert text.startswith("#EXTM3U\n")
    pl = m3u8.loads(text)
    assert pl.is_variant
    assert pl.version == HLS_VERSION
    assert pl.is_independent_segments
    by_uri = {p.uri: p.stream_info for p in pl.playlists}
    assert set(by_uri) == {f"{r.name}/index.m3u8" for r in RUNGS}
    for r in RUNGS:
        si = by_uri[f"{r.name}/index.m3u8"]
        assert si.bandwidth == r.bandwidth
        assert si.average_bandwidth == r.average_bandwidth
        assert si.resolution == (r.width, r.height)
        assert si.codecs == r.codecs
        assert si.frame_rate == pytest.approx(r.frame_rate, abs=1e-3)


def test_master_playlist_highest_bandwidth_first() -> None:
    pl = m3u8.loads(master_playlist(RUNGS))
    bws = [p.stream_info.bandwidth for p in pl.playlists]
    assert bws == sorted(bws, reverse=True)
    assert pl.playlists[0].uri == "720p/index.m3u8"


def test_master_playlist_codecs_quoted_and_one_line_per_variant() -> None:
    text = master_playlist(RUNGS[:1])
    inf = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(inf) == 1
    assert 'CODECS="avc1.64001e,mp4a.40.2"' in inf[0]
    assert "FRAME-RATE=30.000" in inf[0]
    lines = text.splitlines()
    assert lines[lines.index(inf[0]) + 1] == "360p/index.m3u8"


def test_master_playlist_without_frame_rate() -> None:
    r = RenditionInfo("360p", 640, 360, 720_000, 690_000, "avc1.64001e", 0.0)
    text = master_playlist([r])
    assert "FRAME-RATE" not in text
    pl = m3u8.loads(text)
    assert pl.playlists[0].stream_info.frame_rate is None
    assert pl.playlists[0].stream_info.codecs == "avc1.64001e"


# -- media playlists -----------------------------------------------------------------------
def test_media_playlist_basics() -> None:
    s = segs(range(10, 16))
    text = media_playlist(s, 2.0)
    pl = m3u8.loads(text)
    assert not pl.is_variant
    assert pl.version == HLS_VERSION
    assert pl.media_sequence == 10
    assert pl.target_duration == 2
    assert pl.is_independent_segments
    assert not pl.is_endlist
    assert len(pl.segment_map) == 1 and pl.segment_map[0].uri == "init.mp4"
    assert [x.uri for x in pl.segments] == [f"{n}.m4s" for n in range(10, 16)]
    assert [x.duration for x in pl.segments] == [2.0] * 6
    assert not any(x.discontinuity for x in pl.segments)


def test_program_date_times() -> None:
    s = segs(range(3, 8))
    pl = m3u8.loads(media_playlist(s, 2.0))
    pdts = [x.program_date_time for x in pl.segments]
    assert pdts == [seg.program_date_time for seg in s]
    assert all(b - a == timedelta(seconds=2) for a, b in zip(pdts, pdts[1:]))
    # milliseconds, UTC, 'Z'
    assert "#EXT-X-PROGRAM-DATE-TIME:2024-05-17T12:30:06.250Z" in media_playlist(s, 2.0)


def test_program_date_time_from_another_zone_is_written_in_utc() -> None:
    cest = timezone(timedelta(hours=2))
    t = datetime(2024, 5, 17, 14, 30, 0, 123456, tzinfo=cest)
    assert iso_ms(t) == "2024-05-17T12:30:00.123Z"
    s = [Segment("f", "r", 0, 0.0, 2.0, t, b"x")]
    pl = m3u8.loads(media_playlist(s, 2.0))
    assert pl.segments[0].program_date_time == datetime(2024, 5, 17, 12, 30, 0, 123000, tzinfo=timezone.utc)


def test_extinf_durations_are_exact_to_10_us() -> None:
    durs = {0: 2.0, 1: 1.96667, 2: 2.03333, 3: 0.5}
    pl = m3u8.loads(media_playlist(segs(range(4), durations=durs), 2.0))
    assert [x.duration for x in pl.segments] == pytest.approx([durs[i] for i in range(4)], abs=1e-5)


@pytest.mark.parametrize(
    "target,longest,expected",
    [
        (2.0, 2.0, 2),
        (2.0, 1.5, 2),
        (2.0, 2.0004, 2),  # float noise from the encoder does not bump it
        (2.0, 2.1, 3),
        (2.0, 3.9, 4),
        (0.5, 0.5, 1),  # at least 1
        (6.0, 2.0, 6),
        (1.001, 1.001, 1),  # rounds to 1 (RFC 8216 4.3.3.1)
        (2.0, 2.5, 3),
    ],
)
def test_target_duration_is_the_ceiling(target: float, longest: float, expected: int) -> None:
    s = segs([0, 1], d=target, durations={1: longest})
    pl = m3u8.loads(media_playlist(s, target))
    assert pl.target_duration == expected
    # RFC 8216 4.3.3.1: every EXTINF rounded to the nearest integer <= target duration
    assert all(round(x.duration) <= pl.target_duration for x in pl.segments)


def test_discontinuity_on_a_seq_gap() -> None:
    s = segs([4, 5, 7, 8, 11])
    pl = m3u8.loads(media_playlist(s, 2.0))
    flags = {x.uri: x.discontinuity for x in pl.segments}
    assert flags == {"4.m4s": False, "5.m4s": False, "7.m4s": True, "8.m4s": False, "11.m4s": True}
    assert pl.media_sequence == 4
    # PDTs after a gap still say when the picture was captured
    assert pl.segments[2].program_date_time - pl.segments[1].program_date_time == timedelta(seconds=4)


def test_endlist() -> None:
    pl = m3u8.loads(media_playlist(segs([0, 1]), 2.0, ended=True))
    assert pl.is_endlist


def test_empty_media_playlist_is_still_valid() -> None:
    pl = m3u8.loads(media_playlist([], 2.0))
    assert pl.media_sequence == 0
    assert pl.target_duration == 2
    assert pl.segments == []


def test_version_and_header_order() -> None:
    lines = media_playlist(segs([0]), 2.0).splitlines()
    assert lines[0] == "#EXTM3U"
    assert lines[1] == f"#EXT-X-VERSION:{HLS_VERSION}"
    assert HLS_VERSION >= 6  # EXT-X-MAP in a playlist that is not I-frames-only
    # every media segment line follows its EXTINF
    i = lines.index("0.m4s")
    assert lines[i - 1].startswith("#EXTINF:")
