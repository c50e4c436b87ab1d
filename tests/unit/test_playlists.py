"""HLS playlist text (draft-pantos-hls-rfc8216bis), parsed back with the `m3u8` package: the
multivariant playlist, LL-HLS media playlists, Playlist Delta Updates and the policy behind them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import m3u8
import pytest

from orbitcast.delivery.playlists import (
    HLS_VERSION,
    MediaView,
    PartLine,
    RenditionInfo,
    RenditionReport,
    SegmentLine,
    iso_ms,
    master_playlist,
    media_playlist,
    skippable,
)
from orbitcast.config import parse_config
from orbitcast.delivery.policy import PlaylistPolicy, policy_of
from orbitcast.delivery.window import LiveWindow
from orbitcast.segment import Part

T0 = datetime(2024, 5, 17, 12, 30, 0, 250000, tzinfo=timezone.utc)
POLICY = PlaylistPolicy(segment_duration=2.0, part_target=0.5, part_hold_back=1.5, window=6, keep=12,
                        parts_per_segment=4)

RUNGS = [
    RenditionInfo("360p", 640, 360, 720_000, 690_000, "avc1.64001e,mp4a.40.2", 30.0),
    RenditionInfo("720p", 1280, 720, 2_628_000, 2_500_123, "avc1.64001f,mp4a.40.2", 29.97),
    RenditionInfo("480p", 854, 480, 1_328_000, 1_200_456, "avc1.64001e,mp4a.40.2", 25.0),
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


def test_iso_ms_is_utc_with_milliseconds() -> None:
    cest = timezone(timedelta(hours=2))
    assert iso_ms(datetime(2024, 5, 17, 14, 30, 0, 123456, tzinfo=cest)) == "2024-05-17T12:30:00.123Z"


# -- the policy ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"segment_duration": 0.0},
        {"segment_duration": float("nan")},
        {"part_target": 0.0},
        {"part_target": 2.5},  # longer than a segment
        {"part_hold_back": 0.9},  # < 2 x PART-TARGET (4.4.3.8 MUST)
        {"part_hold_back": float("inf")},
        {"window": 2},
        {"segment_duration": 1.5, "window": 3, "keep": 3},  # 4.5 s < 3 x TARGETDURATION (2)
        {"keep": 5},  # < window
        {"parts_per_segment": 0},
        {"parts_per_segment": 1001},
    ],
)
def test_policy_validation(kwargs: dict) -> None:
    fields = dict(segment_duration=2.0, part_target=0.5, part_hold_back=1.5, window=6, keep=12, parts_per_segment=4)
    with pytest.raises(ValueError):
        PlaylistPolicy(**{**fields, **kwargs})


@pytest.mark.parametrize(
    "d,target",
    [(2.0, 2), (1.0, 1), (2.0004, 2), (1.001, 1), (2.1, 3), (0.5, 1), (6.0, 6), (3.9, 4)],
)
def test_target_duration(d: float, target: int) -> None:
    p = PlaylistPolicy(d, min(0.5, d), 1.5, 6, 6, 4)
    assert p.target_duration == target
    assert p.skip_boundary == 6 * target  # the least 4.4.3.8 allows


def test_policy_derived_values() -> None:
    assert POLICY.part_target_ms == 500 and POLICY.part_hold_back_ms == 1500
    assert POLICY.part_horizon == 3  # 3 target durations of 2 s segments
    assert POLICY.part_keep == 12  # keep; parts need only 3 + 3
    assert POLICY.advance_part_limit == 6.0  # 3 / 0.5 s (6.2.5.2)
    assert POLICY.blocking_timeout == 6.0  # then 503 (6.2.5.2)
    third = PlaylistPolicy(1.0, 1 / 3, 1.0, 3, 3, 3)
    assert third.part_target_ms == 334  # rounded up: a part of 1/3 s must not exceed it
    assert third.advance_part_limit == pytest.approx(3000 / 334)
    assert third.part_keep == 6
    assert PlaylistPolicy(6.0, 2.0, 6.0, 3, 3, 3).advance_part_limit == 3.0
    assert PlaylistPolicy(1.5, 0.5, 1.5, 4, 4, 3).part_horizon == 4  # 4 x 1.5 s = 3 x TD (2)
    with pytest.raises(ValueError):
        PlaylistPolicy(1.0, 1 / 3, 0.667, 3, 3, 3)  # 0.667 < 2 x 0.334


def test_policy_from_config_durations() -> None:
    config = parse_config({"segment_duration": 2.0, "part_duration": 0.5, "live_window": 6, "ladder": {"fps": 30}})
    p = policy_of(config)
    assert (p.segment_duration, p.part_target, p.part_hold_back) == (2.0, 0.5, 1.5)
    assert (p.window, p.keep, p.parts_per_segment, p.skip) == (6, 12, 4, True)
    # a hold-back from the config, never under twice the part target
    assert policy_of(parse_config({"part_duration": 0.2, "part_hold_back": 1.0})).part_hold_back == 1.0
    assert policy_of(parse_config({"part_duration": 0.2, "part_hold_back": 0.1})).part_hold_back_ms == 402


@pytest.mark.parametrize("fps,target_ms", [(30, 200), (25, 200), (60, 200), (24, 209), (None, 201)])
def test_part_target_covers_the_longest_part_the_frame_rate_gives(fps: int | None, target_ms: int) -> None:
    assert policy_of(parse_config({"segment_duration": 1.0, "part_duration": 0.2, "ladder": {"fps": fps}})).part_target_ms == target_ms


# -- media playlists from a view --------------------------------------------------------------
def pline(seq: int, i: int, d: float = 0.5) -> PartLine:
    return PartLine(seq, i, d, i == 0)


def sline(seq: int, d: float = 2.0, gap: bool = False, parts: int = 0) -> SegmentLine:
    return SegmentLine(seq, d, T0 + timedelta(seconds=2 * (seq - 10)), gap, tuple(pline(seq, i) for i in range(parts)))


VIEW = MediaView(
    media_sequence=10,
    init_tag="0123456789ab",
    segments=(sline(10), sline(11, gap=True), sline(12, d=1.96667), sline(13, parts=4)),
    open_program_date_time=T0 + timedelta(seconds=8),
    open_parts=(pline(14, 0), pline(14, 1)),
    hint=(14, 2),
    reports=(RenditionReport("720p", 14, 1), RenditionReport("1080p", 13, None)),
)


def test_media_playlist_tags() -> None:
    text = media_playlist(VIEW, POLICY)
    pl = m3u8.loads(text)
    assert not pl.is_variant and not pl.is_endlist
    assert pl.version == HLS_VERSION == 10  # an EXT-X-SKIP that replaces date ranges needs 10 (section 8)
    assert pl.target_duration == 2
    assert pl.media_sequence == 10
    assert pl.is_independent_segments
    sc = pl.server_control
    assert (sc.can_block_reload, sc.part_hold_back, sc.can_skip_until, sc.can_skip_dateranges) == ("YES", 1.5, 12.0, "YES")
    assert pl.part_inf.part_target == 0.5
    assert [m.uri for m in pl.segment_map] == ["init.mp4?v=0123456789ab"]
    segs = [s for s in pl.segments if s.uri]
    assert [s.uri for s in segs] == ["10.m4s", "11.m4s", "12.m4s", "13.m4s"]
    assert [bool(s.gap_tag) for s in segs] == [False, True, False, False]
    assert [s.duration for s in segs] == pytest.approx([2.0, 2.0, 1.96667, 2.0], abs=1e-5)
    assert [p.uri for p in segs[3].parts] == [f"13.{i}.m4s" for i in range(4)]
    assert [p.independent for p in segs[3].parts] == ["YES", None, None, None]
    assert [p.uri for p in pl.segments[-1].parts] == ["14.0.m4s", "14.1.m4s"]
    assert (pl.preload_hint.hint_type, pl.preload_hint.uri) == ("PART", "14.2.m4s")
    assert [(r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports] == [
        ("../720p/index.m3u8", 14, 1), ("../1080p/index.m3u8", 13, None)]
    assert not pl.skip  # m3u8 gives {} without EXT-X-SKIP


def test_media_playlist_line_order() -> None:
    lines = media_playlist(VIEW, POLICY).splitlines()
    assert lines[:8] == [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.0,CAN-SKIP-DATERANGES=YES",
        "#EXT-X-PART-INF:PART-TARGET=0.500",
        "#EXT-X-MEDIA-SEQUENCE:10",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="init.mp4?v=0123456789ab"',
    ]
    # 4.4.4.9: a parent's PDT precedes its first part; parts precede their EXTINF
    i = lines.index('#EXT-X-PART:DURATION=0.50000,URI="13.0.m4s",INDEPENDENT=YES')
    assert lines[i - 1] == "#EXT-X-PROGRAM-DATE-TIME:2024-05-17T12:30:06.250Z"
    assert lines[i + 4:i + 6] == ["#EXTINF:2.00000,", "13.m4s"]
    gap = lines.index("11.m4s")
    assert lines[gap - 3:gap] == ["#EXT-X-PROGRAM-DATE-TIME:2024-05-17T12:30:02.250Z", "#EXT-X-GAP", "#EXTINF:2.00000,"]
    j = lines.index('#EXT-X-PART:DURATION=0.50000,URI="14.0.m4s",INDEPENDENT=YES')
    assert lines[j - 1] == "#EXT-X-PROGRAM-DATE-TIME:2024-05-17T12:30:08.250Z"
    assert lines[j + 2] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="14.2.m4s"'
    assert lines[-1] == '#EXT-X-RENDITION-REPORT:URI="../1080p/index.m3u8",LAST-MSN=13'
    assert "#EXT-X-DISCONTINUITY" not in "\n".join(lines)


def test_without_skip_no_can_skip_until_and_no_delta() -> None:
    p = PlaylistPolicy(2.0, 0.5, 1.5, 6, 12, 4, skip=False)
    long = MediaView(10, "0123456789ab", tuple(sline(s) for s in range(10, 30)), None, (), (30, 0))
    pl = m3u8.loads(media_playlist(long, p, skip=True))
    assert pl.server_control.can_skip_until is None
    assert not pl.skip and len(pl.segments) == 20


def test_part_target_and_hold_back_are_written_in_ms_rounded_up() -> None:
    p = PlaylistPolicy(1.0, 1 / 3, 1.0, 3, 3, 3, skip=False)
    text = media_playlist(VIEW, p)
    assert "#EXT-X-PART-INF:PART-TARGET=0.334\n" in text
    assert "PART-HOLD-BACK=1.000" in text and "CAN-SKIP-UNTIL" not in text
    assert "#EXT-X-TARGETDURATION:1\n" in text


@pytest.mark.parametrize(
    "durations,skipped",
    [
        ([2.0] * 6, 0),  # 10 s after the first: within 12
        ([2.0] * 7, 0),  # 12 s after the first: not further than 12
        ([2.0] * 8, 1),
        ([2.0] * 10, 3),
        ([1.0] * 30, 17),  # 13 s after the 17th
        ([0.1] * 200, 79),  # float sums must not tip one more over the edge
        ([], 0),
    ],
)
def test_skippable_counts_segments_entirely_beyond_the_boundary(durations: list[float], skipped: int) -> None:
    segs = [SegmentLine(i, d, T0) for i, d in enumerate(durations)]
    assert skippable(segs, 12.0) == skipped


def test_delta_update_tags() -> None:
    long = MediaView(100, "0123456789ab", tuple(sline(s) for s in range(100, 110)), None, (pline(110, 0),), (110, 1))
    pl = m3u8.loads(media_playlist(long, POLICY, skip=True))
    assert pl.skip.skipped_segments == 3
    assert pl.media_sequence == 100  # unchanged by skipping
    assert [s.uri for s in pl.segments if s.uri] == [f"{s}.m4s" for s in range(103, 110)]
    assert pl.version >= 9
    text = media_playlist(long, POLICY, skip=True)
    assert text.count("#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n") == 1
    assert text.index("#EXT-X-SKIP") > text.index("#EXT-X-MAP")


# -- delta updates from a live window ---------------------------------------------------------
LL = PlaylistPolicy(segment_duration=1.0, part_target=0.25, part_hold_back=0.75, window=12, keep=14,
                    parts_per_segment=4)
BASE = 1_700_000_000


def lpart(seq: int, i: int) -> Part:
    start = seq + i * 0.25
    return Part("iss", "360p", seq, i, start, 0.25, i == 0, datetime.fromtimestamp(start, timezone.utc), b"%d.%d" % (seq, i))


def entries(pl: m3u8.M3U8) -> list[tuple]:
    first = pl.media_sequence + (pl.skip.skipped_segments if pl.skip else 0)
    segs = [s for s in pl.segments if s.uri]
    return [
        (first + i, s.uri, s.duration, s.program_date_time, bool(s.gap_tag),
         tuple((p.uri, p.duration, p.independent) for p in s.parts))
        for i, s in enumerate(segs)
    ]


def merged(previous: m3u8.M3U8, delta: m3u8.M3U8) -> list[tuple]:
    """What a client does (6.3.7): the skipped segments come from its previous full copy."""
    skipped = delta.skip.skipped_segments if delta.skip else 0
    by_msn = {e[0]: e for e in entries(previous)}
    head = [by_msn[msn] for msn in range(delta.media_sequence, delta.media_sequence + skipped)]
    return head + entries(delta)


def test_a_delta_update_merged_with_the_previous_playlist_is_the_next_playlist() -> None:
    w = LiveWindow(LL)
    w.set_init("iss", RenditionInfo("360p", 640, 360, 1, 1, "avc1", 30.0), b"init")
    history: list[m3u8.M3U8] = []
    deltas = 0
    for seq in range(BASE, BASE + 40):
        if seq % 9 == 4:
            continue  # a gap now and then
        for i in range(4):
            w.add_part(lpart(seq, i))
            full = m3u8.loads(w.media("iss", "360p") or "")
            delta = m3u8.loads(w.media("iss", "360p", skip=True) or "")
            # a client's copy may be up to half the skip boundary old (6.3.7): 3 s, 12 parts
            for previous in history[-12:]:
                assert merged(previous, delta) == entries(full)
            for tag in ("media_sequence", "target_duration", "version"):
                assert getattr(delta, tag) == getattr(full, tag)
            assert delta.preload_hint.uri == full.preload_hint.uri
            assert [p.uri for p in delta.segments[-1].parts] == [p.uri for p in full.segments[-1].parts]
            deltas += bool(delta.skip)
            history.append(full)
    assert deltas > 50


def test_nothing_to_skip_gives_the_full_playlist() -> None:
    w = LiveWindow(LL)
    w.set_init("iss", RenditionInfo("360p", 640, 360, 1, 1, "avc1", 30.0), b"init")
    for seq in range(BASE, BASE + 4):
        for i in range(4):
            w.add_part(lpart(seq, i))
    assert w.media("iss", "360p", skip=True) is w.media("iss", "360p")
    assert "#EXT-X-SKIP" not in (w.media("iss", "360p") or "")


def test_skip_requests_are_ignored_without_can_skip_until() -> None:
    # 6.2.5.1: a server MUST ignore _HLS_skip if the playlist has no CAN-SKIP-UNTIL
    no_skip = PlaylistPolicy(1.0, 0.25, 0.75, 12, 14, 4, skip=False)
    w = LiveWindow(no_skip)
    w.set_init("iss", RenditionInfo("360p", 640, 360, 1, 1, "avc1", 30.0), b"init")
    for seq in range(BASE, BASE + 20):
        for i in range(4):
            w.add_part(lpart(seq, i))
    assert w.media("iss", "360p", skip=True) == w.media("iss", "360p")
    assert "CAN-SKIP-UNTIL" not in (w.media("iss", "360p") or "")
