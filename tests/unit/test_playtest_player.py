"""The simulated player's logic without a network: the virtual buffer draining in real time
and its stall accounting, hls.js's throughput estimate and rendition choice, catch-up, and where
a player starts and what it loads next in an LL-HLS playlist."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from orbitcast.delivery.playlists import MediaView, PartLine, SegmentLine, media_playlist
from orbitcast.delivery.policy import PlaylistPolicy
from orbitcast.playtest import abr
from orbitcast.playtest.buffer import PlaybackBuffer, catch_up_rate, target_latency
from orbitcast.playtest.playlist import parse_media
from orbitcast.playtest.simviewer import BEHIND, WAIT, Item, SimulatedViewer, hold_back, listed_from, locate, start_item

# -- the buffer ----------------------------------------------------------------------------


def test_playback_starts_once_the_first_part_is_buffered_and_drains_in_real_time():
    b = PlaybackBuffer(threshold=0.2)
    b.seek(100.0, 100.0, now=0.0)
    b.add(100.0, 100.1, now=0.5)
    assert b.started_at is None  # 0.1 s is less than a part
    b.add(100.1, 101.0, now=1.0)
    assert b.started_at == 1.0 and b.playing
    b.advance(1.4)
    assert b.pdt == pytest.approx(100.4) and b.ahead == pytest.approx(0.6)
    assert b.played_s == pytest.approx(0.4) and b.stalls == []


def test_a_player_joining_mid_part_starts_with_a_part_ahead_of_its_position():
    b = PlaybackBuffer(threshold=0.2)
    b.seek(10.45, 10.0, now=0.0)  # PART-HOLD-BACK put it at 10.45; the independent part starts at 10.0
    assert b.pdt == 10.45
    b.add(10.0, 10.2, now=0.1)
    b.add(10.2, 10.4, now=0.2)
    b.add(10.4, 10.6, now=0.3)
    assert b.started_at is None and b.ahead == pytest.approx(0.15)
    b.add(10.6, 10.8, now=0.4)
    assert b.started_at == 0.4 and b.pdt == pytest.approx(10.45)


def test_an_empty_buffer_stalls_at_the_moment_it_ran_dry_and_resumes_with_a_part():
    b = PlaybackBuffer(threshold=0.2)
    b.seek(10.0, 10.0, now=0.0)
    b.add(10.0, 11.0, now=0.0)  # starts at 0 with 1 s ahead
    b.advance(3.0)  # ran dry at 1.0; the last two seconds were a stall
    assert not b.playing and b.stalled_since == pytest.approx(1.0)
    assert b.played_s == pytest.approx(1.0) and b.stalled_s(3.0) == pytest.approx(2.0)
    b.add(11.0, 11.1, now=3.0)  # 0.1 s: not enough to resume
    assert not b.playing
    b.add(11.1, 11.4, now=3.5)
    assert b.playing and b.stalls == [(pytest.approx(1.0), 3.5)]
    b.advance(4.0)
    assert b.pdt == pytest.approx(11.4)  # 0.4 s played after the stall, and dry again at 3.9
    assert b.played_s == pytest.approx(1.4) and b.stalled_s(4.0) == pytest.approx(2.5 + 0.1)
    assert len(b.all_stalls(4.0)) == 2


def test_a_faster_rate_drains_faster_and_counts_wall_time_played():
    b = PlaybackBuffer(threshold=0.2)
    b.seek(0.0, 0.0, now=0.0)
    b.add(0.0, 3.0, now=0.0)
    b.set_rate(1.5, now=0.0)
    b.advance(1.0)
    assert b.pdt == pytest.approx(1.5) and b.played_s == pytest.approx(1.0)
    b.advance(3.0)  # 1.5 s left lasts 1 s at 1.5x
    assert b.stalled_since == pytest.approx(2.0) and b.played_s == pytest.approx(2.0)


def test_a_jump_while_playing_is_a_stall_until_media_arrives_there():
    b = PlaybackBuffer(threshold=0.2)
    b.seek(0.0, 0.0, now=0.0)
    b.add(0.0, 5.0, now=0.0)
    b.seek(50.0, 49.8, now=1.0)
    assert b.stalled_since == 1.0 and b.pdt == 50.0
    b.add(49.8, 50.4, now=1.5)
    assert b.playing and b.stalls == [(1.0, 1.5)] and b.pdt == pytest.approx(50.0)


def test_media_after_a_pdt_jump_plays_on_and_the_frame_on_screen_jumps_with_it():
    b = PlaybackBuffer(threshold=0.2)
    b.seek(0.0, 0.0, now=0.0)
    b.add(0.0, 1.0, now=0.0)
    b.add(1.005, 1.2, now=0.1)  # 5 ms off: rounding of durations against program date-times
    assert b.holes == 0 and b.end == pytest.approx(1.195)
    b.add(7.2, 7.4, now=0.2)  # the next piece is dated 6 s later (a gap passed over, a server's jump)
    assert b.holes == 1 and b.hole_s == pytest.approx(6.0) and b.end == pytest.approx(1.395)
    b.advance(1.3)  # 1.3 s played: 0.105 s into the piece dated 7.2
    assert b.playing and b.stalls == [] and b.pdt == pytest.approx(7.305)


def test_media_already_buffered_is_not_counted_twice():
    b = PlaybackBuffer(threshold=0.2)
    b.seek(0.0, 0.0, now=0.0)
    for i in range(3):
        b.add(i * 0.2, (i + 1) * 0.2, now=0.0)  # parts 0-2 of a segment
    b.add(0.0, 1.0, now=0.1)  # then the whole segment: only its last 0.4 s are new
    assert b.end == pytest.approx(1.0) and b.holes == 0
    b.add(0.4, 0.6, now=0.2)  # a part it holds already
    assert b.end == pytest.approx(1.0)


def test_catch_up_follows_hls_js():
    # within range, more than a second buffered: faster, by how far behind, capped
    assert catch_up_rate(latency=1.6, target=0.6, target_duration=1.0, ahead=1.2, max_rate=1.5) == 1.35
    assert catch_up_rate(latency=1.5, target=0.6, target_duration=1.0, ahead=1.2, max_rate=1.2) == 1.2
    assert catch_up_rate(latency=1.6, target=0.6, target_duration=1.0, ahead=0.8, max_rate=1.5) == 1.0  # too little buffer
    assert catch_up_rate(latency=0.62, target=0.6, target_duration=1.0, ahead=2.0, max_rate=1.5) == 1.0  # on target
    assert catch_up_rate(latency=5.0, target=0.6, target_duration=1.0, ahead=2.0, max_rate=1.5) == 1.0  # out of range
    assert catch_up_rate(latency=1.6, target=0.6, target_duration=1.0, ahead=2.0, max_rate=1.0) == 1.0  # turned off
    # liveMaxLatencyDuration narrows the range when it is below target + target duration
    assert catch_up_rate(latency=1.5, target=0.6, target_duration=1.0, ahead=2.0, max_rate=1.5, max_latency=0.8) == 1.0
    assert catch_up_rate(latency=1.3, target=0.6, target_duration=1.0, ahead=2.0, max_rate=1.5, max_latency=0.8) > 1.0


def test_each_stall_raises_the_target_latency_by_a_second_up_to_a_target_duration():
    assert target_latency(0.6, 0, 1.0) == 0.6
    assert target_latency(0.6, 1, 2.0) == 1.6
    assert target_latency(0.6, 5, 2.0) == 2.6


# -- throughput and rendition choice ---------------------------------------------------------


def test_the_estimate_is_the_default_until_a_download_then_the_throughput():
    est = abr.BandwidthEstimator()
    assert est.estimate == abr.DEFAULT_ESTIMATE_BPS
    est.sample(0.5, 125_000)  # 2 Mbit/s
    assert est.estimate == pytest.approx(2e6)  # the zero-start bias is taken out


def test_a_drop_shows_fast_a_rise_slowly():
    est = abr.BandwidthEstimator()
    for _ in range(50):
        est.sample(0.2, 100_000)  # 10 s at 4 Mbit/s
    for _ in range(6):
        est.sample(0.5, 25_000)  # then 3 s at 0.4 Mbit/s: the fast average (half-life 3 s) halves the gap
    assert est.estimate == est.fast.estimate < est.slow.estimate
    assert est.estimate == pytest.approx(0.5 * 4e6 + 0.5 * 0.4e6, rel=0.05)
    for _ in range(30):
        est.sample(0.1, 100_000)  # 3 s at 8 Mbit/s: the slow average (9 s) holds the estimate back
    assert est.estimate == est.slow.estimate < est.fast.estimate
    assert est.estimate < 5e6


def test_time_to_first_byte_is_not_read_as_a_slow_link():
    held = abr.BandwidthEstimator()
    held.download(total_s=0.45, ttfb_s=0.35, nbytes=25_000, held=True)  # a preload hint held 350 ms
    assert held.estimate == pytest.approx(2e6)  # 25 kB in the 100 ms after the first byte
    plain = abr.BandwidthEstimator()
    plain.download(total_s=0.45, ttfb_s=0.35, nbytes=25_000)  # up to the TTFB estimate (0.1 s) taken out
    assert plain.estimate == pytest.approx(25_000 * 8 / 0.35)


def test_tiny_fast_downloads_count_at_least_50_ms():
    est = abr.BandwidthEstimator()
    est.sample(0.001, 10_000)
    assert est.estimate == pytest.approx(1.6e6)


LADDER = [396_000, 696_000]  # the test pipeline's AVERAGE-BANDWIDTHs, 240p and 360p


def test_choice_goes_up_only_with_room_and_down_only_when_it_no_longer_fits():
    assert abr.choose(LADDER, 0, 900_000) == 0  # 696k > 0.7 x 900k: stay
    assert abr.choose(LADDER, 0, 1_000_000) == 1  # 696k <= 700k: up
    assert abr.choose(LADDER, 1, 900_000) == 1  # 696k <= 0.95 x 900k: stay
    assert abr.choose(LADDER, 1, 700_000) == 0  # 696k > 665k: down
    assert abr.choose(LADDER, 1, 100_000) == 0  # nothing fits: the lowest


# -- where to start, what to load next ----------------------------------------------------

POLICY = PlaylistPolicy(segment_duration=1.0, part_target=0.2, part_hold_back=0.6, window=12, keep=24,
                        parts_per_segment=5)
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
E = T0.timestamp()


def playlist(open_parts: int, gap: int | None = None, jump: float = 0.0, jump_at: int = 110):
    """Segments 100-111 of 1 s (parts from 109 on) and `open_parts` of 112; from `jump_at` on
    dated `jump` seconds later (a source re-anchored to the wall clock)."""
    def dated(seq: int) -> datetime:
        return T0 + timedelta(seconds=seq + (jump if seq >= jump_at else 0.0))

    segments = []
    for seq in range(100, 112):
        parts = tuple(PartLine(seq, i, 0.2, i == 0) for i in range(5)) if seq >= 109 else ()
        segments.append(SegmentLine(seq, 1.0, dated(seq), gap=seq == gap, parts=parts))
    open_ = tuple(PartLine(112, i, 0.2, i == 0) for i in range(open_parts))
    view = MediaView(100, "abcdef012345", tuple(segments), dated(112) if open_ else None, open_, (112, open_parts))
    return parse_media(media_playlist(view, POLICY))


def test_an_ll_hls_player_starts_part_hold_back_behind_the_edge_at_an_independent_part():
    pl = playlist(open_parts=3)  # edge at 112.6
    assert hold_back(pl, low_latency=True) == pytest.approx(0.6)
    item = start_item(pl, pl.edge - 0.6, low_latency=True)  # 112.0: the open segment's part 0
    assert (item.seq, item.index, item.uri) == (112, 0, "112.0.m4s")
    item = start_item(pl, E + 111.5, low_latency=True)  # mid-segment: back to its independent part 0
    assert (item.seq, item.index) == (111, 0) and item.pdt == pytest.approx(E + 111)


def test_a_classic_player_starts_three_target_durations_back_on_whole_segments():
    pl = playlist(open_parts=3)
    assert hold_back(pl, low_latency=False) == 3.0
    item = start_item(pl, pl.edge - 3.0, low_latency=False)
    assert (item.seq, item.index, item.uri) == (109, None, "109.m4s")


def test_next_items_parts_then_past_the_last_part_the_next_segment_then_wait():
    pl = playlist(open_parts=2)
    assert locate(pl, 111, 4, True) == Item(111, 4, "111.4.m4s", pytest.approx(E + 111.8), pytest.approx(0.2))
    nxt = locate(pl, 111, 5, True)  # past a complete segment's last part: part 0 of the next
    assert isinstance(nxt, Item) and (nxt.seq, nxt.index) == (112, 0)
    assert locate(pl, 112, 2, True) == WAIT  # not cut yet (the preload hint)
    assert locate(pl, 113, 0, True) == WAIT
    assert locate(pl, 99, 0, True) == BEHIND  # slid out of the window


def test_old_segments_load_whole_and_classic_players_ignore_parts():
    pl = playlist(open_parts=2)
    old = locate(pl, 105, 0, True)
    assert isinstance(old, Item) and (old.index, old.uri, old.duration) == (None, "105.m4s", 1.0)
    classic = locate(pl, 111, 0, False)
    assert isinstance(classic, Item) and classic.uri == "111.m4s"
    assert locate(pl, 112, 0, False) == WAIT  # in progress: a classic player waits for the whole segment


def test_a_gap_segment_is_passed_over_without_a_request():
    pl = playlist(open_parts=0, gap=104)
    item = locate(pl, 104, 0, True)
    assert isinstance(item, Item) and item.gap and item.uri is None


def test_the_distance_to_the_live_edge_is_counted_on_the_media_timeline():
    pl = playlist(open_parts=3)
    assert listed_from(pl, 111, 2) == pytest.approx(0.6 + 0.6)  # 111's last three parts, 112's three
    assert listed_from(pl, 105, 0) == pytest.approx(7 + 0.6)  # whole segments 105-111, then the parts
    assert listed_from(pl, 113, 0) == 0.0
    # dates that jump 5 s forward (a re-anchored source) put nobody further behind in media
    jumped = playlist(open_parts=3, jump=5.0)
    assert jumped.edge - pl.edge == pytest.approx(5.0)
    assert listed_from(jumped, 105, 0) == listed_from(pl, 105, 0)


def test_a_player_joining_where_the_dates_jump_starts_after_the_jump():
    # Dated 5 s later from 112 on: PART-HOLD-BACK behind the edge (117.2 - 0.6) falls between
    # 111's end (112) and 112's start (117). It starts at 112.0, its playhead on that part's date.
    pl = playlist(open_parts=1, jump=5.0, jump_at=112)
    viewer = SimulatedViewer("v", "http://127.0.0.1:9/x.m3u8", None, None, 0.0)  # type: ignore[arg-type]
    viewer.low_latency, viewer.playlist_at = True, time.monotonic()
    viewer.buffer = PlaybackBuffer(threshold=0.2)
    item = viewer._join_live(pl)
    assert (item.seq, item.index) == (112, 0)
    assert viewer.buffer.pdt == pytest.approx(E + 117.0) and viewer.buffer.playhead == pytest.approx(0.0)


def test_player_settings_from_the_command_line_are_a_json_object_or_a_clear_error():
    from orbitcast.playtest import PlaytestError, player_config_json

    assert player_config_json('{"abrEwmaDefaultEstimate": 5000000}') == {"abrEwmaDefaultEstimate": 5000000}
    with pytest.raises(PlaytestError, match="not JSON"):
        player_config_json("{abr: 1}")
    with pytest.raises(PlaytestError, match="JSON object"):
        player_config_json("[1, 2]")
