"""The playtest's playlist reading: what orbitcast's own renderer writes (full playlists and
delta updates), read as the `m3u8` parser reads it, and the blocking-reload URLs a simulated
viewer builds from it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import m3u8
import pytest

from orbitcast.delivery.playlists import MediaView, PartLine, RenditionInfo, SegmentLine, master_playlist, media_playlist
from orbitcast.delivery.policy import PlaylistPolicy
from orbitcast.playtest.errors import PlaylistError
from orbitcast.playtest.playlist import directive_url, merge, parse_master, parse_media, reload_url

POLICY = PlaylistPolicy(segment_duration=1.0, part_target=0.2, part_hold_back=0.6, window=12, keep=24,
                        parts_per_segment=5)
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
URL = "http://127.0.0.1:8000/live/iss/360p/index.m3u8"


def view(first: int, count: int, open_parts: int, parts_for_last: int = 3) -> MediaView:
    """`count` complete 1 s segments from seq `first` (the last `parts_for_last` with their five
    parts listed), then `open_parts` parts of the segment in progress."""
    segments = []
    for seq in range(first, first + count):
        parts = ()
        if seq >= first + count - parts_for_last:
            parts = tuple(PartLine(seq, i, 0.2, i == 0) for i in range(5))
        segments.append(SegmentLine(seq, 1.0, T0 + timedelta(seconds=seq), parts=parts))
    nxt = first + count
    open_ = tuple(PartLine(nxt, i, 0.2, i == 0) for i in range(open_parts))
    hint = (nxt, open_parts)
    return MediaView(first, "abcdef012345", tuple(segments), T0 + timedelta(seconds=nxt) if open_ else None, open_, hint)


def test_a_full_ll_hls_playlist_reads_as_m3u8_reads_it():
    text = media_playlist(view(100, 12, 2), POLICY)
    pl = parse_media(text)
    ref = m3u8.loads(text)
    assert pl.low_latency and pl.can_block_reload
    assert pl.part_hold_back == pytest.approx(0.6) and pl.part_target == pytest.approx(0.2)
    assert pl.can_skip_until == pytest.approx(6.0) and pl.target_duration == 1
    assert pl.media_sequence == ref.media_sequence == 100
    complete = [s for s in pl.segments if s.complete]
    assert [s.uri for s in complete] == [s.uri for s in ref.segments if s.uri]
    assert [s.duration for s in complete] == [s.duration for s in ref.segments if s.uri]
    # every part, the open segment's included, in order, with its PDT counted from its parent's
    ours = [p.uri for s in pl.segments for p in s.parts]
    theirs = [p.uri for s in ref.segments for p in s.parts]
    assert ours == theirs and ours[-1] == "112.1.m4s"
    open_seg = pl.segments[-1]
    assert not open_seg.complete and open_seg.seq == 112 and len(open_seg.parts) == 2
    assert open_seg.parts[1].pdt == pytest.approx((T0 + timedelta(seconds=112.2)).timestamp())
    assert pl.edge == pytest.approx((T0 + timedelta(seconds=112.4)).timestamp())
    assert pl.init_uri == "init.mp4?v=abcdef012345"
    assert pl.hint_uri == ref.preload_hint.uri == "112.2.m4s"
    assert pl.hint == (112, 2) and pl.next_part() == (112, 2)


def test_after_the_last_part_of_a_complete_segment_comes_part_0_of_the_next():
    pl = parse_media(media_playlist(view(100, 12, 0), POLICY))
    assert pl.segments[-1].complete and pl.last_part is not None and pl.last_part.seq == 111
    assert pl.next_part() == (112, 0) and pl.hint == (112, 0)


def test_a_playlist_without_parts_asks_for_the_next_segment():
    text = media_playlist(view(100, 12, 0, parts_for_last=0), POLICY).replace(
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="112.0.m4s"\n', "")
    pl = parse_media(text)
    assert pl.last_part is None and pl.next_part() == (112, None) and pl.hint is None


def test_a_delta_update_merges_into_the_playlist_it_updates():
    full = parse_media(media_playlist(view(100, 12, 3), POLICY))
    delta_text = media_playlist(view(101, 12, 1), POLICY, skip=True)
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in delta_text
    delta = parse_media(delta_text)
    assert delta.skipped > 0 and delta.segments[0].seq == 101 + delta.skipped
    merged = merge(full, delta)
    assert merged.skipped == 0
    assert merged.segments == parse_media(media_playlist(view(101, 12, 1), POLICY)).segments


def test_a_delta_update_without_what_it_skipped_is_refused():
    delta = parse_media(media_playlist(view(101, 12, 1), POLICY, skip=True))
    with pytest.raises(PlaylistError, match="never saw"):
        merge(None, delta)
    assert merge(None, parse_media(media_playlist(view(101, 12, 1), POLICY))).segments  # a full one needs nothing


def test_blocking_reload_url_in_hls_js_order_with_a_delta_update():
    pl = parse_media(media_playlist(view(100, 12, 2), POLICY))
    url = reload_url(URL, pl)
    assert url.startswith(URL + "?")
    # orbitcast offers CAN-SKIP-DATERANGES, so hls.js asks v2; a server without it gets YES
    assert parse_qsl(urlsplit(url).query) == [("_HLS_msn", "112"), ("_HLS_part", "2"), ("_HLS_skip", "v2")]
    older = parse_media(media_playlist(view(100, 12, 2), POLICY).replace(",CAN-SKIP-DATERANGES=YES", ""))
    assert parse_qsl(urlsplit(reload_url(URL, older)).query)[-1] == ("_HLS_skip", "YES")
    assert parse_qsl(urlsplit(reload_url(URL, pl, skip=False)).query) == [("_HLS_msn", "112"), ("_HLS_part", "2")]


def test_directives_replace_old_ones_and_keep_the_rest_of_the_url():
    signed = "http://h:1/live/t/k~1~-~ab/iss/360p/index.m3u8?x=1&_HLS_msn=5&_HLS_part=1"
    url = directive_url(signed, 7, None, None)
    assert urlsplit(url).path == "/live/t/k~1~-~ab/iss/360p/index.m3u8"
    assert parse_qsl(urlsplit(url).query) == [("x", "1"), ("_HLS_msn", "7")]


def test_master_playlist_variants_lowest_first_with_names_from_their_uris():
    text = master_playlist([
        RenditionInfo("360p", 640, 360, 816_000, 696_000, "avc1.64001e,mp4a.40.2", 30.0),
        RenditionInfo("240p", 426, 240, 456_000, 396_000, "avc1.640015,mp4a.40.2", 30.0),
    ])
    variants = parse_master(text, "http://h:1/live/iss/master.m3u8")
    assert [v.name for v in variants] == ["240p", "360p"]
    assert [v.listed for v in variants] == [1, 0]  # orbitcast lists the highest first
    assert [v.bitrate for v in variants] == [396_000, 696_000]  # AVERAGE-BANDWIDTH
    assert variants[1].uri == "http://h:1/live/iss/360p/index.m3u8"
    assert variants[1].codecs == "avc1.64001e,mp4a.40.2" and (variants[1].width, variants[1].height) == (640, 360)
    assert parse_master(media_playlist(view(1, 12, 0), POLICY), URL) == []


@pytest.mark.parametrize("text", [
    "", "hello", "#EXTM3U\n#EXT-X-TARGETDURATION:x\n", "#EXTM3U\n#EXTINF:1,\nno-pdt.m4s\n",
    "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n", "#EXTM3U\n#EXT-X-TARGETDURATION:1\nseg-without-extinf.m4s\n",
])
def test_playlists_no_player_could_play_from_are_refused(text):
    with pytest.raises(PlaylistError):
        parse_media(text)


def test_a_master_playlist_with_a_bad_bandwidth_is_refused():
    with pytest.raises(PlaylistError):
        parse_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots\na/index.m3u8\n", URL)
