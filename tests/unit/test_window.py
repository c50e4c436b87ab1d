"""The live window with LL-HLS parts: arrivals in any order and more than once, closing segments
from their parts, gaps, the keep horizon, blocking decisions and snapshots. Playlists are parsed
back with the `m3u8` package."""

from __future__ import annotations

import pickle
import random
from datetime import datetime, timedelta, timezone

import m3u8
import pytest

from orbitcast.delivery.blocking import Readiness
from orbitcast.delivery.names import init_tag, parse_media_name
from orbitcast.delivery.playlists import RenditionInfo
from orbitcast.delivery.policy import PlaylistPolicy
from orbitcast.delivery.window import (
    FloorUpdate,
    InitUpdate,
    ListedUpdate,
    LiveWindow,
    PartUpdate,
    SegmentUpdate,
    Update,
)
from orbitcast.segment import Part, Segment

T0 = datetime(1970, 1, 1, tzinfo=timezone.utc)  # the media timeline starts at the wall clock
D = 2.0
PD = 0.5
PPS = 4
S = 850_000_000  # seq of 2024-ish media at D = 2 s
POLICY = PlaylistPolicy(segment_duration=D, part_target=PD, part_hold_back=3 * PD, window=4, keep=6,
                        parts_per_segment=PPS)
READY, WAIT, TOO_FAR, UNKNOWN = Readiness.READY, Readiness.WAIT, Readiness.TOO_FAR, Readiness.UNKNOWN


def part(seq: int, index: int, rendition: str = "360p", feed: str = "iss", data: bytes | None = None,
         duration: float = PD) -> Part:
    start = seq * D + index * PD
    return Part(feed, rendition, seq, index, start, duration, index == 0, T0 + timedelta(seconds=start),
                data if data is not None else f"{feed}/{rendition}/{seq}.{index}".encode())


def whole(seq: int, rendition: str = "360p", feed: str = "iss", data: bytes | None = None,
          duration: float = D) -> Segment:
    if data is None:
        data = b"".join(part(seq, i, rendition, feed).data for i in range(PPS))
    return Segment(feed, rendition, seq, seq * D, duration, T0 + timedelta(seconds=seq * D), data)


def info(name: str, bw: int = 700_000) -> RenditionInfo:
    return RenditionInfo(name, 640, 360, bw, bw - 50_000, "avc1.64001e,mp4a.40.2", 30.0)


def window(policy: PlaylistPolicy = POLICY, renditions: tuple[str, ...] = ("360p",), feed: str = "iss") -> LiveWindow:
    w = LiveWindow(policy)
    for i, r in enumerate(renditions):
        w.set_init(feed, info(r, 700_000 * (i + 1)), f"init-{r}".encode())
    return w


def put(w: LiveWindow, seq: int, upto: int = PPS, start: int = 0, rendition: str = "360p", feed: str = "iss") -> None:
    for i in range(start, upto):
        assert w.add_part(part(seq, i, rendition, feed))


def parsed(w: LiveWindow, rendition: str = "360p", feed: str = "iss", skip: bool = False) -> m3u8.M3U8:
    text = w.media(feed, rendition, skip)
    assert text is not None
    return m3u8.loads(text)


def listed(pl: m3u8.M3U8) -> list[tuple[int, str, bool]]:
    """(MSN, URI, gap) of every listed segment, MSNs counted from MEDIA-SEQUENCE (and SKIP)."""
    first = pl.media_sequence + (pl.skip.skipped_segments if pl.skip else 0)
    segs = [s for s in pl.segments if s.uri is not None]
    return [(first + i, s.uri, bool(s.gap_tag)) for i, s in enumerate(segs)]


def open_parts(pl: m3u8.M3U8) -> list[str]:
    """URIs of the parts after the last EXTINF (m3u8 puts them in a segment without URI)."""
    last = pl.segments[-1] if pl.segments else None
    return [p.uri for p in last.parts] if last is not None and last.uri is None else []


def part_uris(pl: m3u8.M3U8, uri: str) -> list[str]:
    return [p.uri for s in pl.segments if s.uri == uri for p in s.parts]


# -- parts, hints, closing ------------------------------------------------------------------------
def test_parts_of_the_segment_in_progress_follow_the_last_extinf() -> None:
    w = window()
    put(w, S)
    put(w, S + 1, upto=2)
    pl = parsed(w)
    assert listed(pl) == [(S, f"{S}.m4s", False)]
    assert part_uris(pl, f"{S}.m4s") == [f"{S}.{i}.m4s" for i in range(PPS)]
    assert open_parts(pl) == [f"{S + 1}.0.m4s", f"{S + 1}.1.m4s"]
    assert pl.preload_hint.hint_type == "PART" and pl.preload_hint.uri == f"{S + 1}.2.m4s"
    first = pl.segments[-1].parts[0]
    assert first.independent == "YES" and first.duration == pytest.approx(PD)
    assert pl.segments[-1].parts[1].independent is None
    assert w.last_part("iss", "360p") == (S + 1, 1)
    assert pl.media_sequence == S


@pytest.mark.parametrize("have,hint", [(0, (S, 0)), (1, (S, 1)), (PPS - 1, (S, PPS - 1)), (PPS, (S + 1, 0))])
def test_preload_hint_names_the_next_part(have: int, hint: tuple[int, int]) -> None:
    w = window()
    put(w, S - 1)
    put(w, S, upto=have)
    assert parsed(w).preload_hint.uri == f"{hint[0]}.{hint[1]}.m4s"
    assert w.part_ready("iss", "360p", *hint) == WAIT


def test_a_complete_newest_segment_hints_the_next_segment() -> None:
    w = window()
    put(w, S)
    assert w.add_segment(whole(S))
    pl = parsed(w)
    assert listed(pl) == [(S, f"{S}.m4s", False)]
    assert open_parts(pl) == [] and pl.preload_hint.uri == f"{S + 1}.0.m4s"


def test_the_preload_hint_is_always_there() -> None:
    w = window()
    assert w.add_segment(whole(S))  # no parts at all
    assert parsed(w).preload_hint.uri == f"{S + 1}.0.m4s"
    w.add_part(part(S + 1, 2))  # a part that cannot be listed yet: 0 and 1 are missing
    pl = parsed(w)
    assert open_parts(pl) == [] and pl.preload_hint.uri == f"{S + 1}.0.m4s"


def test_duplicates_are_refused() -> None:
    w = window()
    assert w.add_part(part(S, 0))
    assert not w.add_part(part(S, 0))
    assert not w.add_part(part(S, 0, data=b"other bytes"))  # the first copy stays
    assert w.part_bytes("iss", "360p", S, 0) == part(S, 0).data
    put(w, S, start=1)
    assert w.add_segment(whole(S))
    assert not w.add_segment(whole(S))
    assert not w.add_segment(whole(S, data=b"other"))
    assert w.segment_bytes("iss", "360p", S) == whole(S).data


def test_out_of_order_parts_are_listed_without_holes() -> None:
    w = window()
    put(w, S - 1)
    assert w.add_part(part(S, 0))
    assert w.add_part(part(S, 2))  # 1 is still in flight
    pl = parsed(w)
    assert open_parts(pl) == [f"{S}.0.m4s"]
    assert pl.preload_hint.uri == f"{S}.1.m4s"
    assert w.part_ready("iss", "360p", S, 2) == READY  # its bytes are here
    assert w.part_ready("iss", "360p", S, 1) == WAIT
    assert w.add_part(part(S, 1))
    pl = parsed(w)
    assert open_parts(pl) == [f"{S}.{i}.m4s" for i in range(3)]
    assert pl.preload_hint.uri == f"{S}.3.m4s"


def test_a_later_part_closes_a_segment_from_its_parts() -> None:
    w = window()
    put(w, S)
    assert w.segment_bytes("iss", "360p", S) is None  # still in progress
    assert w.add_part(part(S + 1, 0))
    pl = parsed(w)
    assert listed(pl) == [(S, f"{S}.m4s", False)]
    assert pl.segments[0].duration == pytest.approx(PPS * PD)
    assert w.segment_bytes("iss", "360p", S) == whole(S).data
    assert open_parts(pl) == [f"{S + 1}.0.m4s"]


def test_a_feed_taken_over_after_a_node_loss_goes_on_at_its_open_seq_made_whole() -> None:
    """A feed whose reader and transcoder died together goes on at the seq the window still has
    open (actors/edge.py, resume_at): made again from its start, it comes whole (a member's
    first seq has no parts, actors/transcoder.py), is listed with the new bytes and without the
    dead encoder's parts, and no seq is a gap."""
    w = window(renditions=("360p", "240p"))
    assert w.resume_seq("iss") is None
    put(w, S)
    put(w, S, rendition="240p")
    put(w, S + 1, upto=2)
    put(w, S + 1, upto=3, rendition="240p")
    assert w.resume_seq("iss") == S + 1  # open in every rendition: made again
    for rung in ("360p", "240p"):
        assert w.add_segment(whole(S + 1, rung, data=f"again {rung}".encode()))
        put(w, S + 2, rendition=rung)
    for rung in ("360p", "240p"):
        pl = parsed(w, rung)
        assert [(seq, gap) for seq, _, gap in listed(pl)] == [(S, False), (S + 1, False)]
        assert open_parts(pl)[0] == f"{S + 2}.0.m4s"
        assert part_uris(pl, f"{S + 1}.m4s") == []  # the dead encoder's parts are not its parts
        assert w.segment_bytes("iss", rung, S + 1) == f"again {rung}".encode()
    assert w.resume_seq("iss") == S + 2  # open: made again
    put(w, S + 3, upto=1)
    assert w.resume_seq("iss") == S + 3


def test_closing_from_fewer_parts_sums_their_durations() -> None:
    w = window()
    put(w, S, upto=3)
    assert w.add_part(part(S + 1, 0))  # part S.3 is late
    pl = parsed(w)
    assert pl.segments[0].duration == pytest.approx(3 * PD)
    assert part_uris(pl, f"{S}.m4s") == [f"{S}.{i}.m4s" for i in range(3)]
    assert not w.add_part(part(S, 3))  # a closed segment's listing cannot grow
    assert w.part_ready("iss", "360p", S, 3) == UNKNOWN


def test_a_later_segment_also_closes_the_previous_from_its_parts() -> None:
    w = window()
    put(w, S)
    assert w.add_segment(whole(S + 1))
    pl = parsed(w)
    assert listed(pl) == [(S, f"{S}.m4s", False), (S + 1, f"{S + 1}.m4s", False)]
    assert part_uris(pl, f"{S}.m4s") == [f"{S}.{i}.m4s" for i in range(PPS)]
    assert part_uris(pl, f"{S + 1}.m4s") == []


def test_certified_segment_confirms_a_segment_closed_from_its_parts() -> None:
    w = window()
    put(w, S)
    put(w, S + 1, upto=1)
    before = w.media("iss", "360p")
    assert w.add_segment(whole(S))
    assert w.mismatches == 0
    assert w.media("iss", "360p") == before
    assert w.segment_bytes("iss", "360p", S) == whole(S).data


def test_a_mismatched_certified_segment_keeps_its_bytes_and_the_listing() -> None:
    w = window()
    put(w, S)
    put(w, S + 1, upto=1)
    before = w.media("iss", "360p")
    assert w.add_segment(whole(S, data=b"certified bytes", duration=2.002))
    assert w.mismatches == 1
    assert w.media("iss", "360p") == before  # a listed URI's tags never change
    assert w.segment_bytes("iss", "360p", S) == b"certified bytes"
    assert w.part_bytes("iss", "360p", S, 0) == part(S, 0).data


def test_a_segment_that_arrives_without_parts_lists_no_part_tags() -> None:
    w = window()
    put(w, S)
    assert w.add_segment(whole(S))
    assert w.add_segment(whole(S + 1))
    pl = parsed(w)
    assert part_uris(pl, f"{S}.m4s") == [f"{S}.{i}.m4s" for i in range(PPS)]
    assert part_uris(pl, f"{S + 1}.m4s") == []
    assert w.last_part("iss", "360p") == (S, PPS - 1)


def test_a_segment_that_arrives_before_all_its_parts_is_listed_without_them() -> None:
    # 3.2: the parts listed with a segment must hold the same media; two of four do not
    w = window()
    put(w, S - 1)
    put(w, S, upto=2)
    assert w.add_segment(whole(S))
    assert w.mismatches == 1
    pl = parsed(w)
    assert listed(pl)[-1] == (S, f"{S}.m4s", False)
    assert part_uris(pl, f"{S}.m4s") == []
    assert pl.segments[-1].duration == pytest.approx(D)
    assert not w.add_part(part(S, 2))


def test_a_part_whose_parent_was_listed_complete_is_refused() -> None:
    w = window()
    assert w.add_segment(whole(S))
    assert not w.add_part(part(S, 0))
    assert w.part_bytes("iss", "360p", S, 0) is None


def test_part_index_out_of_range_is_refused() -> None:
    w = window()
    assert not w.add_part(part(S, 1000))
    assert not w.add_part(part(S, -1))
    assert not w.add_part(part(-1, 0))
    assert w.media("iss", "360p") is None


# -- gaps and media sequence numbers ------------------------------------------------------------
def test_a_missing_seq_is_listed_as_a_gap() -> None:
    w = window()
    put(w, S)
    put(w, S + 2)  # S+1 never came
    put(w, S + 3, upto=1)
    pl = parsed(w)
    assert listed(pl) == [(S, f"{S}.m4s", False), (S + 1, f"{S + 1}.m4s", True), (S + 2, f"{S + 2}.m4s", False)]
    gap = pl.segments[1]
    assert gap.duration == pytest.approx(D) and gap.parts == []
    assert gap.program_date_time == T0 + timedelta(seconds=(S + 1) * D)
    assert not any(s.discontinuity for s in pl.segments)
    assert pl.discontinuity_sequence in (None, 0)
    assert w.segment_bytes("iss", "360p", S + 1) is None
    assert w.part_ready("iss", "360p", S + 1, 0) == UNKNOWN
    assert w.playlist_ready("iss", "360p", S + 1, None) == READY  # the gap is a listed segment


def test_a_gap_is_dated_from_the_media_after_it() -> None:
    # the wall clock was re-anchored during the outage: the gap lines up with what plays next
    w = window()
    put(w, S)
    shifted = [part(S + 2, i) for i in range(2)]
    for p in shifted:
        w.add_part(Part(p.feed, p.rendition, p.seq, p.index, p.start, p.duration, p.independent,
                        p.program_date_time + timedelta(seconds=0.3), p.data))
    segs = [s for s in parsed(w).segments if s.uri]
    assert segs[1].gap_tag
    assert segs[1].program_date_time == T0 + timedelta(seconds=(S + 1) * D + 0.3)


def test_a_late_segment_fills_a_gap_without_renumbering() -> None:
    w = window()
    put(w, S)
    put(w, S + 2)
    put(w, S + 3, upto=1)
    before = listed(parsed(w))
    assert w.add_segment(whole(S + 1))
    after = listed(parsed(w))
    assert [(m, u) for m, u, _ in after] == [(m, u) for m, u, _ in before]
    assert [g for _, _, g in after] == [False, False, False]
    assert w.segment_bytes("iss", "360p", S + 1) == whole(S + 1).data


def test_late_parts_of_a_gap_are_refused() -> None:
    # it could only be closed from one part; its certified segment is what fills it
    w = window()
    put(w, S)
    put(w, S + 2, upto=1)
    assert not w.add_part(part(S + 1, 0))
    assert listed(parsed(w))[-1] == (S + 1, f"{S + 1}.m4s", True)


def test_a_gap_whose_parts_had_a_hole_is_filled_by_its_segment() -> None:
    w = window()
    put(w, S)
    assert w.add_part(part(S + 1, 1))  # part 0 never came: nothing listable
    put(w, S + 2, upto=1)
    assert listed(parsed(w))[-1] == (S + 1, f"{S + 1}.m4s", True)
    assert w.part_bytes("iss", "360p", S + 1, 1) == part(S + 1, 1).data
    assert w.add_segment(whole(S + 1))
    assert listed(parsed(w))[-1] == (S + 1, f"{S + 1}.m4s", False)
    assert w.mismatches == 0


def test_no_gap_is_listed_before_the_first_seq() -> None:
    w = window()
    put(w, S + 10)
    put(w, S + 11, upto=1)
    pl = parsed(w)
    assert pl.media_sequence == S + 10
    assert listed(pl) == [(S + 10, f"{S + 10}.m4s", False)]
    assert not w.add_segment(whole(S + 9))  # MEDIA-SEQUENCE must not move backwards
    assert not w.add_part(part(S + 9, 0))
    assert parsed(w).media_sequence == S + 10


def test_a_first_playlist_with_parts_only() -> None:
    w = window()
    put(w, S, upto=2)
    pl = parsed(w)
    assert pl.media_sequence == S and listed(pl) == []
    assert open_parts(pl) == [f"{S}.0.m4s", f"{S}.1.m4s"]


def test_window_lists_the_last_complete_segments() -> None:
    w = window()
    for seq in range(S, S + 10):
        put(w, seq)
    put(w, S + 10, upto=1)
    pl = parsed(w)
    assert [m for m, _, _ in listed(pl)] == list(range(S + 10 - POLICY.window, S + 10))
    assert pl.media_sequence == S + 10 - POLICY.window


def test_a_jump_far_ahead_lists_gaps_and_keeps_numbers() -> None:
    w = window()
    put(w, S)
    put(w, S + 1000, upto=1)
    pl = parsed(w)
    assert listed(pl) == [(m, f"{m}.m4s", True) for m in range(S + 1000 - POLICY.window, S + 1000)]
    assert open_parts(pl) == [f"{S + 1000}.0.m4s"]


def test_msns_are_stable_under_loss_reordering_and_duplicates() -> None:
    """A long run through a lossy, reordering, duplicating channel: MEDIA-SEQUENCE never moves
    back, every URI is listed under its own MSN, and a listed segment's tags never change
    (apart from its parts leaving near the edge and a gap being filled)."""
    rng = random.Random(7)
    w = window(renditions=("360p", "720p"))
    writes: list[Update] = []
    for seq in range(S, S + 60):
        if rng.random() < 0.1:
            continue  # a lost segment
        for r in ("360p", "720p"):
            writes += [PartUpdate(part(seq, i, r)) for i in range(PPS) if rng.random() > 0.05]
            if rng.random() < 0.8:
                writes.append(SegmentUpdate(whole(seq, r)))
    # bounded reordering and duplication, as retried hand-offs produce
    for i in range(len(writes) - 1):
        if rng.random() < 0.3:
            j = min(len(writes) - 1, i + rng.randint(1, 6))
            writes[i], writes[j] = writes[j], writes[i]
    writes += rng.sample(writes, 40)
    rng.shuffle(writes[-60:])

    sequence = {"360p": 0, "720p": 0}
    seen: dict[tuple[str, int], tuple] = {}
    for update in writes:
        w.apply(update)
        for r in ("360p", "720p"):
            text = w.media("iss", r)
            if text is None:
                continue
            pl = m3u8.loads(text)
            assert pl.media_sequence >= sequence[r]
            sequence[r] = pl.media_sequence
            for (msn, uri, gap), seg in zip(listed(pl), [s for s in pl.segments if s.uri]):
                assert parse_media_name(uri) == (msn, None)
                assert all(parse_media_name(p.uri)[0] == msn for p in seg.parts)
                if gap:
                    continue
                tags = (seg.duration, seg.program_date_time)
                assert seen.setdefault((r, msn), tags) == tags, f"{r} {msn} changed"


# -- keep horizon and part horizon ---------------------------------------------------------------
def test_keep_horizon() -> None:
    w = window()
    for seq in range(S, S + 12):
        put(w, seq)
        assert w.add_segment(whole(seq))
    last = S + 11
    for seq in range(S, S + 12):
        kept = seq > last - POLICY.keep
        assert (w.segment_bytes("iss", "360p", seq) is not None) == kept, seq
        parts_kept = seq > last - POLICY.part_keep
        assert (w.part_bytes("iss", "360p", seq, 0) is not None) == parts_kept, seq
    assert not w.add_segment(whole(last - POLICY.keep, data=b"late"))  # older than keep
    assert w.add_segment(whole(last + 1))
    assert w.segment_bytes("iss", "360p", last + 1 - POLICY.keep) is None


def test_the_dvr_window_lists_back_past_keep_with_the_same_tags() -> None:
    dvr = PlaylistPolicy(D, PD, 3 * PD, window=4, keep=6, parts_per_segment=PPS, dvr=10)
    w = window(dvr)
    seen: dict[int, tuple] = {}
    for seq in range(S, S + 20):
        put(w, seq)
        assert w.add_segment(whole(seq))
        for s in parsed(w).segments:
            msn = int(s.uri.split(".")[0])
            tags = (s.duration, s.program_date_time)
            assert seen.setdefault(msn, tags) == tags  # a listing kept past keep never changes
    pl = parsed(w)
    msns = [msn for msn, _, _ in listed(pl)]
    assert msns == list(range(S + 10, S + 20)) and pl.media_sequence == S + 10
    assert not any(gap for _, _, gap in listed(pl))
    # bytes only within keep: the older ones are the archive's (live_http falls back to it)
    assert [m for m in msns if w.segment_bytes("iss", "360p", m) is not None] == list(range(S + 14, S + 20))
    # a delta update skips the DVR part: a low-latency player's reload stays small
    delta = parsed(w, skip=True)
    assert delta.skip is not None and delta.skip.skipped_segments == 10 - 7
    assert listed(delta)[-1][0] == S + 19


def test_a_dvr_window_smaller_than_the_live_window_changes_nothing() -> None:
    small = PlaylistPolicy(D, PD, 3 * PD, window=4, keep=6, parts_per_segment=PPS, dvr=2)
    a, b = window(small), window()
    for seq in range(S, S + 9):
        put(a, seq)
        put(b, seq)
    assert a.media("iss", "360p") == b.media("iss", "360p")


def test_a_listed_update_never_overwrites_media() -> None:
    w = window(PlaylistPolicy(D, PD, 3 * PD, window=4, keep=6, parts_per_segment=PPS, dvr=10))
    for seq in range(S, S + 3):
        put(w, seq)
    before = w.media("iss", "360p")
    assert not w.apply(ListedUpdate("iss", "360p", S + 1, 9.0, 0.0, T0))  # it has media: kept
    assert not w.apply(ListedUpdate("iss", "360p", S + 1, -1.0, 0.0, T0))
    assert w.media("iss", "360p") == before


def test_every_listed_segment_and_part_is_fetchable() -> None:
    w = window()
    for seq in range(S, S + 15):
        put(w, seq)
        pl = parsed(w)
        for msn, _, gap in listed(pl):
            assert (w.segment_bytes("iss", "360p", msn) is not None) != gap
        for s in pl.segments:
            for p in s.parts:
                assert w.part_bytes("iss", "360p", *parse_media_name(p.uri)) is not None  # type: ignore[arg-type]


def test_part_bytes_outlive_their_tags_by_three_target_durations() -> None:
    # 6.2.2: a part must stay fetchable for three target durations after its tag left
    w = window(PlaylistPolicy(D, PD, 3 * PD, window=3, keep=3, parts_per_segment=PPS))
    for seq in range(S, S + 20):
        put(w, seq)
        pl = parsed(w)
        tagged = {parse_media_name(p.uri)[0] for s in pl.segments for p in s.parts}
        oldest_tagged = min(tagged)
        for back in range(1, 4):  # the three segments (3 x D = 3 x TD) whose tags left last
            if oldest_tagged - back >= S:
                assert w.part_bytes("iss", "360p", oldest_tagged - back, 0) is not None


def test_parts_are_listed_only_near_the_live_edge() -> None:
    w = window(PlaylistPolicy(D, PD, 3 * PD, window=8, keep=8, parts_per_segment=PPS))
    for seq in range(S, S + 9):
        put(w, seq)
    put(w, S + 9, upto=1)
    pl = parsed(w)
    with_parts = [msn for (msn, uri, _) in listed(pl) if part_uris(pl, uri)]
    # parts of the last three seqs (three target durations), counting the one in progress
    assert with_parts == [S + 7, S + 8]
    assert POLICY.part_horizon == 3
    # removed from the head, in order (6.2.2)
    segs = [s for s in pl.segments if s.uri]
    first_with = next(i for i, s in enumerate(segs) if s.parts)
    assert all(s.parts for s in segs[first_with:])


def test_program_date_times_are_consistent_with_durations() -> None:
    w = window(PlaylistPolicy(D, PD, 3 * PD, window=10, keep=10, parts_per_segment=PPS))
    for seq in range(S, S + 12):
        if seq in (S + 4, S + 5, S + 9):
            continue
        put(w, seq)
    put(w, S + 12, upto=1)
    segs = [s for s in parsed(w).segments if s.uri]
    assert all(s.program_date_time is not None for s in segs)
    for a, b in zip(segs, segs[1:]):
        assert abs((b.program_date_time - a.program_date_time).total_seconds() - a.duration) < 1e-3


# -- renditions, master, inits, reports ---------------------------------------------------------
def test_renditions_listed_only_once_they_have_media() -> None:
    w = LiveWindow(POLICY)
    assert w.feeds() == [] and w.master("iss") is None
    assert w.set_init("iss", info("360p", 700_000), b"init-360")
    assert w.set_init("iss", info("240p", 400_000), b"init-240")
    assert w.renditions("iss") == [] and w.master("iss") is None
    assert w.media("iss", "360p") is None
    assert w.init("iss", "360p") == b"init-360"  # inits are fetchable before media
    w.add_part(part(S, 0, "360p"))
    assert [r.name for r in w.renditions("iss")] == ["360p"]
    master = m3u8.loads(w.master("iss") or "")
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8"]
    assert w.media("iss", "240p") is None
    w.add_segment(whole(S, "240p"))
    master = m3u8.loads(w.master("iss") or "")
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "240p/index.m3u8"]
    assert w.feeds() == ["iss"]


def test_media_without_init_has_no_playlist() -> None:
    w = LiveWindow(POLICY)
    assert w.add_part(part(S, 0))
    assert w.renditions("iss") == [] and w.master("iss") is None
    assert w.media("iss", "360p") is None  # no MAP URI to name
    assert w.playlist_ready("iss", "360p", S, None) == UNKNOWN
    w.set_init("iss", info("360p"), b"init")
    assert w.media("iss", "360p") is not None


def test_unknown_feed_and_rendition() -> None:
    w = window()
    put(w, S)
    assert w.media("nope", "360p") is None and w.media("iss", "nope") is None
    assert w.init("iss", "nope") is None and w.init_tag("nope", "360p") is None
    assert w.segment_bytes("iss", "nope", S) is None and w.part_bytes("nope", "360p", S, 0) is None
    assert w.last_part("iss", "nope") is None and w.newest("nope") is None
    assert w.playlist_ready("iss", "nope", S, None) == UNKNOWN
    assert w.part_ready("nope", "360p", S, 0) == UNKNOWN


def test_init_has_a_versioned_uri() -> None:
    w = window()
    put(w, S)
    tag = init_tag(b"init-360p")
    assert w.init_tag("iss", "360p") == tag
    assert parsed(w).segment_map[0].uri == f"init.mp4?v={tag}"
    assert not w.set_init("iss", info("360p", 700_000), b"init-360p")  # unchanged
    assert w.set_init("iss", info("360p", 700_000), b"a new init")
    assert parsed(w).segment_map[0].uri == f"init.mp4?v={init_tag(b'a new init')}"
    assert w.init("iss", "360p") == b"a new init"
    assert w.set_init("iss", info("360p", 900_000), b"a new init")  # new info only


def test_rendition_reports() -> None:
    w = window(renditions=("360p", "720p", "1080p"))
    put(w, S, rendition="360p")
    put(w, S + 1, upto=2, rendition="360p")
    put(w, S, rendition="720p")
    put(w, S + 1, upto=3, rendition="720p")
    w.add_segment(whole(S, "1080p"))  # a rendition without parts
    pl = parsed(w, "360p")
    reports = {r.uri: (r.last_msn, r.last_part) for r in pl.rendition_reports}
    assert reports == {"../720p/index.m3u8": (S + 1, 2), "../1080p/index.m3u8": (S, None)}
    pl = parsed(w, "720p")
    assert {r.uri for r in pl.rendition_reports} == {"../360p/index.m3u8", "../1080p/index.m3u8"}
    w.add_part(part(S, 0, "nope"))  # media without init: no playlist, so no report
    assert "nope" not in (w.media("iss", "360p") or "")


def test_newest() -> None:
    w = window(renditions=("360p", "240p"))
    assert w.newest("iss") is None
    put(w, S)
    assert w.newest("iss") is None  # nothing complete yet
    w.add_segment(whole(S + 1, "240p"))
    w.add_segment(whole(S - 3, "360p", feed="other"))
    newest = w.newest("iss")
    assert newest is not None and (newest.seq, newest.rendition) == (S + 1, "240p")
    assert newest.duration == D and newest.program_date_time == T0 + timedelta(seconds=(S + 1) * D)
    put(w, S + 2, upto=1)  # closes 360p S from its parts; S+1 is a gap there
    assert (w.newest("iss").seq, w.newest("iss").rendition) == (S + 1, "240p")  # type: ignore[union-attr]
    assert w.newest("other").seq == S - 3  # type: ignore[union-attr]


# -- caching and versions -------------------------------------------------------------------------
def test_rendered_text_is_cached_until_a_write_to_that_feed() -> None:
    w = window(renditions=("360p", "720p"))
    w.set_init("other", info("360p"), b"i")
    put(w, S)
    a, m = w.media("iss", "360p"), w.master("iss")
    assert w.media("iss", "360p") is a and w.master("iss") is m
    assert w.media("iss", "360p", skip=True) is w.media("iss", "360p", skip=True)
    w.add_part(part(S, 0, feed="other"))  # another feed
    assert w.media("iss", "360p") is a
    w.add_part(part(S, 0, "720p"))  # a sibling: its report changes this playlist
    b = w.media("iss", "360p")
    assert b is not a and b != a
    assert not w.add_part(part(S, 0, "720p"))  # refused: nothing changes
    assert w.media("iss", "360p") is b
    encoded = w.media_bytes("iss", "360p")
    assert encoded == b.encode() and w.media_bytes("iss", "360p") is encoded  # encoded once
    w.add_part(part(S + 1, 0))
    assert w.media_bytes("iss", "360p") == w.media("iss", "360p").encode() != encoded  # type: ignore[union-attr]


def test_apply_dispatches() -> None:
    w = LiveWindow(POLICY)
    assert w.apply(InitUpdate("iss", info("360p"), b"i"))
    assert w.apply(PartUpdate(part(S, 0)))
    assert not w.apply(PartUpdate(part(S, 0)))
    assert w.apply(SegmentUpdate(whole(S)))
    assert w.media("iss", "360p") is not None
    with pytest.raises(TypeError):
        w.apply("not an update")  # type: ignore[arg-type]


# -- blocking decisions through the window ------------------------------------------------------
def test_playlist_ready() -> None:
    w = window()
    put(w, S)
    put(w, S + 1, upto=2)
    ready = lambda msn, p=None: w.playlist_ready("iss", "360p", msn, p)  # noqa: E731
    assert ready(S) == READY and ready(S - 50) == READY
    assert ready(S + 1) == WAIT and ready(S + 2) == WAIT
    assert ready(S + 3) == TOO_FAR  # last segment S, + 2
    assert ready(S + 1, 1) == READY and ready(S + 1, 2) == WAIT
    assert ready(S, PPS) == READY  # past S's last part = (S+1, 0), listed
    assert ready(S + 2, 3) == WAIT  # 6 parts past S+1.1: the Advance Part Limit (3 / 0.5 s)
    assert ready(S + 3, 0) == TOO_FAR
    assert ready(S + 1, 8) == TOO_FAR  # 7 parts past
    put(w, S + 1, start=2)
    assert ready(S + 1, PPS) == WAIT  # S+1 may still get a fifth part
    w.add_segment(whole(S + 1))
    assert ready(S + 1) == READY and ready(S + 1, PPS) == WAIT  # now (S+2, 0)
    assert ready(S + 3) == WAIT


def test_part_ready() -> None:
    w = window()
    for seq in range(S, S + 10):
        put(w, seq)
    put(w, S + 10, upto=2)
    ready = lambda seq, i: w.part_ready("iss", "360p", seq, i)  # noqa: E731
    assert ready(S + 10, 1) == READY and ready(S + 9, 3) == READY
    assert ready(S + 10, 2) == WAIT  # hinted
    assert ready(S + 11, 0) == WAIT  # a few parts ahead
    assert ready(S + 12, 0) == UNKNOWN  # far ahead
    assert ready(S + 9, 4) == UNKNOWN  # closed without such a part
    assert ready(S, 0) == UNKNOWN  # older than keep
    assert ready(S + 10, 1000) == UNKNOWN


def test_a_segment_with_one_part_more_than_usual() -> None:
    # 29.97 fps: a segment may be cut into one part more (or fewer) than parts_per_segment
    w = window()
    put(w, S, upto=PPS)
    assert parsed(w).preload_hint.uri == f"{S + 1}.0.m4s"
    assert w.part_ready("iss", "360p", S, PPS) == WAIT  # may still come
    assert w.add_part(part(S, PPS, duration=0.1))
    pl = parsed(w)
    assert open_parts(pl)[-1] == f"{S}.{PPS}.m4s" and pl.preload_hint.uri == f"{S + 1}.0.m4s"
    assert w.add_part(part(S + 1, 0))
    pl = parsed(w)
    assert len(part_uris(pl, f"{S}.m4s")) == PPS + 1
    assert pl.segments[0].duration == pytest.approx(PPS * PD + 0.1)


# -- snapshots ---------------------------------------------------------------------------------
def busy_window(dvr: int = 0) -> LiveWindow:
    """Two feeds, three renditions, gaps, mismatches, closes from parts, confirmations, pruning."""
    policy = PlaylistPolicy(D, PD, 3 * PD, window=9, keep=11, parts_per_segment=PPS, dvr=dvr)
    w = window(policy, renditions=("360p", "720p"))
    w.set_init("other", info("360p"), b"init-other")
    rng = random.Random(11)
    for seq in range(S, S + 25):
        for r in ("360p", "720p"):
            if (r, seq) in {("360p", S + 19), ("720p", S + 20)}:
                continue  # gaps
            n = PPS - 1 if seq in (S + 20, S + 21) else PPS
            for i in range(n):
                w.add_part(part(seq, i, r))
            if seq == S + 17:
                w.add_segment(whole(seq, r, data=b"mismatch"))  # confirms with other bytes
            elif seq % 3 and seq != S + 24:
                w.add_segment(whole(seq, r))
            if rng.random() < 0.2:
                w.add_part(part(seq, 0, r))  # duplicate
        w.add_segment(whole(seq, "360p", feed="other")) if seq % 2 else None
    w.add_segment(whole(S + 20, "720p"))  # a gap filled late
    assert w.add_segment(whole(S + 20, "360p", data=b"late mismatch"))  # closed from parts before
    w.add_part(part(S + 24, 1, "1080p"))  # a rendition without init, with a hole
    return w


def assert_same(a: LiveWindow, b: LiveWindow) -> None:
    assert a.feeds() == b.feeds()
    for feed in a.feeds():
        assert a.master(feed) == b.master(feed)
        assert a.renditions(feed) == b.renditions(feed)
        assert a.newest(feed) == b.newest(feed)
        for r in ("360p", "720p", "1080p"):
            for skip in (False, True):
                assert a.media(feed, r, skip) == b.media(feed, r, skip), (feed, r, skip)
            assert a.init(feed, r) == b.init(feed, r) and a.init_tag(feed, r) == b.init_tag(feed, r)
            assert a.last_part(feed, r) == b.last_part(feed, r)
            for seq in range(S - 2, S + 28):
                assert a.segment_bytes(feed, r, seq) == b.segment_bytes(feed, r, seq), (feed, r, seq)
                assert a.playlist_ready(feed, r, seq, None) == b.playlist_ready(feed, r, seq, None)
                for i in range(PPS + 1):
                    assert a.part_bytes(feed, r, seq, i) == b.part_bytes(feed, r, seq, i), (feed, r, seq, i)
                    assert a.part_ready(feed, r, seq, i) == b.part_ready(feed, r, seq, i)
                    assert a.playlist_ready(feed, r, seq, i) == b.playlist_ready(feed, r, seq, i)


def rebuilt(w: LiveWindow) -> LiveWindow:
    replica = LiveWindow(w.policy)
    for update in pickle.loads(pickle.dumps(w.snapshot())):  # as it crosses Ray
        assert replica.apply(update)
    return replica


def test_snapshot_rebuilds_the_same_window() -> None:
    w = busy_window()
    assert w.mismatches >= 2
    snapshot = w.snapshot()
    # the certificate of a seq closed from its parts follows the write that closed it
    confirm = snapshot.index(SegmentUpdate(whole(S + 20, "360p", data=b"late mismatch")))
    closer = snapshot.index(PartUpdate(part(S + 21, 0, "360p")))
    assert closer < confirm
    replica = rebuilt(w)
    assert_same(w, replica)
    assert "#EXT-X-GAP" in (w.media("iss", "360p") or "")
    assert "#EXT-X-SKIP" in (w.media("iss", "360p", skip=True) or "")


def test_a_replica_built_from_a_snapshot_follows_the_live_updates() -> None:
    w = busy_window()
    replica = rebuilt(w)
    rng = random.Random(5)
    for seq in range(S + 25, S + 32):
        for r in ("360p", "720p"):
            updates: list[Update] = [PartUpdate(part(seq, i, r)) for i in range(PPS)]
            if rng.random() < 0.5:
                updates.append(SegmentUpdate(whole(seq, r)))
            for u in updates + [PartUpdate(part(seq - 1, 0, r))]:
                assert w.apply(u) == replica.apply(u)
    assert_same(w, replica)


def test_snapshot_keeps_the_gaps_at_the_head_of_the_window() -> None:
    # after a long outage, the media before the gaps is gone; a replica must still list them
    w = window()
    for seq in range(S, S + 3):
        put(w, seq)
    put(w, S + 15)
    put(w, S + 16, upto=1)
    assert listed(parsed(w))[0] == (S + 12, f"{S + 12}.m4s", True)
    assert w.segment_bytes("iss", "360p", S + 2) is None  # pruned
    snapshot = w.snapshot()
    assert FloorUpdate("iss", "360p", S) in snapshot
    assert_same(w, rebuilt(w))


def test_snapshot_carries_the_dvr_listing_beyond_keep() -> None:
    w = busy_window(dvr=20)
    snapshot = w.snapshot()
    assert any(isinstance(u, ListedUpdate) for u in snapshot)
    full = w.media("iss", "360p") or ""
    assert f"{S + 4}.m4s" in full and w.segment_bytes("iss", "360p", S + 4) is None  # listed, bytes gone
    assert_same(w, rebuilt(w))


def test_snapshot_of_an_empty_window() -> None:
    assert LiveWindow(POLICY).snapshot() == []
    w = window()
    assert w.snapshot() == [InitUpdate("iss", info("360p"), b"init-360p")]
    assert_same(w, rebuilt(w))


def test_a_floor_update_applies_only_to_a_rendition_without_media() -> None:
    w = window()
    assert w.apply(FloorUpdate("iss", "720p", S))
    assert not w.apply(FloorUpdate("iss", "720p", S - 5))
    put(w, S)
    assert not w.apply(FloorUpdate("iss", "360p", S - 5))
    assert not w.add_part(part(S - 1, 0, "720p"))  # before its floor


def test_a_seq_closed_short_of_its_end_serves_its_certified_bytes_not_its_parts() -> None:
    """Its last part died with its encoder; the next seq's first part closes it from the parts
    it has (listed: a closed seq's listing must not wait), but its bytes are the certified
    segment's once that comes; a seq whose parts reach its end is served from them at once."""
    now = [1000.0]
    w = LiveWindow(POLICY, clock=lambda: now[0])
    w.set_init("iss", info("360p"), b"init-360p")
    put(w, S)
    put(w, S + 1, upto=PPS - 1)
    put(w, S + 2, upto=1)
    assert w.segment_bytes("iss", "360p", S) == whole(S).data  # its parts reach its end
    assert [uri for _, uri, _ in listed(parsed(w))][-2:] == [f"{S}.m4s", f"{S + 1}.m4s"]
    assert w.segment_bytes("iss", "360p", S + 1) is None
    assert w.segment_ready("iss", "360p", S + 1) is WAIT
    certified = whole(S + 1)
    assert w.add_segment(certified)
    assert w.segment_bytes("iss", "360p", S + 1) == certified.data
    assert w.segment_ready("iss", "360p", S + 1) is READY
    # one whose certified segment never comes: its parts after all, once the wait is over
    put(w, S + 2, start=1, upto=PPS - 1)
    put(w, S + 3, upto=1)
    assert w.segment_bytes("iss", "360p", S + 2) is None
    now[0] += 60
    assert w.segment_bytes("iss", "360p", S + 2) == b"".join(part(S + 2, i).data for i in range(PPS - 1))
