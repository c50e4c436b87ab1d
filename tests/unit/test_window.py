"""The edge's live window: ordering, duplicates, window and keep horizon, playlists."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import m3u8
import pytest

from orbitcast.delivery.playlists import RenditionInfo
from orbitcast.delivery.window import LiveWindow
from orbitcast.segment import Segment

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
D = 2.0


def seg(seq: int, rendition: str = "360p", feed: str = "iss", data: bytes | None = None) -> Segment:
    return Segment(feed, rendition, seq, seq * D, D, T0 + timedelta(seconds=seq * D),
                   data if data is not None else f"{feed}/{rendition}/{seq}".encode())


def info(name: str, bw: int = 700_000) -> RenditionInfo:
    return RenditionInfo(name, 640, 360, bw, bw - 50_000, "avc1.64001e,mp4a.40.2", 30.0)


def test_out_of_order_arrivals_are_listed_in_order() -> None:
    w = LiveWindow(window=6, segment_duration=D)
    w.set_init("iss", info("360p"), b"init")
    order = [0, 2, 1, 4, 3, 5]
    for s in order:
        assert w.add(seg(s))
    assert [s.seq for s in w.listed("iss", "360p")] == [0, 1, 2, 3, 4, 5]
    pl = m3u8.loads(w.media("iss", "360p") or "")
    assert [x.uri for x in pl.segments] == [f"{n}.m4s" for n in range(6)]
    assert not any(x.discontinuity for x in pl.segments)


def test_shuffled_arrivals_after_the_first() -> None:
    rng = random.Random(3)
    w = LiveWindow(window=50, segment_duration=D, keep=100)
    w.add(seg(0))
    rest = list(range(1, 40))
    rng.shuffle(rest)
    for s in rest:
        assert w.add(seg(s))
    assert [s.seq for s in w.listed("iss", "360p")] == list(range(40))


def test_duplicate_seq_keeps_the_first_copy() -> None:
    w = LiveWindow(window=6, segment_duration=D)
    first = seg(3, data=b"first")
    assert w.add(first)
    assert not w.add(seg(3, data=b"second"))
    got = w.segment("iss", "360p", 3)
    assert got is not None and got.data == b"first" and got.digest == first.digest
    assert [s.seq for s in w.listed("iss", "360p")] == [3]


def test_window_length() -> None:
    w = LiveWindow(window=4, segment_duration=D)
    for s in range(10):
        w.add(seg(s))
    assert [s.seq for s in w.listed("iss", "360p")] == [6, 7, 8, 9]
    pl = m3u8.loads(w.media("iss", "360p") or "")
    assert pl.media_sequence == 6
    assert len(pl.segments) == 4


def test_keep_horizon() -> None:
    w = LiveWindow(window=3, segment_duration=D, keep=5)
    for s in range(12):
        w.add(seg(s))
    # listed: the newest 3; fetchable: the newest 5
    assert [s.seq for s in w.listed("iss", "360p")] == [9, 10, 11]
    for s in range(7, 12):
        assert w.segment("iss", "360p", s) is not None
    for s in range(0, 7):
        assert w.segment("iss", "360p", s) is None


def test_keep_defaults_to_twice_the_window() -> None:
    w = LiveWindow(window=3, segment_duration=D)
    for s in range(20):
        w.add(seg(s))
    kept = [s for s in range(20) if w.segment("iss", "360p", s) is not None]
    assert kept == list(range(14, 20))


def test_too_old_segments_are_refused() -> None:
    w = LiveWindow(window=3, segment_duration=D, keep=4)
    for s in range(10, 20):
        w.add(seg(s))
    assert not w.add(seg(15))  # known
    assert not w.add(seg(5))  # older than anything kept
    assert not w.add(seg(15, data=b"other"))
    assert w.segment("iss", "360p", 5) is None
    assert [s.seq for s in w.listed("iss", "360p")] == [17, 18, 19]


def test_gap_is_filled_when_the_missing_segment_arrives() -> None:
    w = LiveWindow(window=6, segment_duration=D)
    for s in (0, 1, 3, 4):
        w.add(seg(s))
    pl = m3u8.loads(w.media("iss", "360p") or "")
    assert [x.discontinuity for x in pl.segments] == [False, False, True, False]
    assert w.add(seg(2))
    pl = m3u8.loads(w.media("iss", "360p") or "")
    assert [x.uri for x in pl.segments] == [f"{n}.m4s" for n in range(5)]
    assert not any(x.discontinuity for x in pl.segments)


def test_newest() -> None:
    w = LiveWindow(window=6, segment_duration=D)
    assert w.newest("iss") is None
    w.add(seg(4, "360p"))
    w.add(seg(5, "240p"))
    w.add(seg(3, "240p"))
    newest = w.newest("iss")
    assert newest is not None and (newest.seq, newest.rendition) == (5, "240p")
    w.add(seg(9, "other", feed="other"))
    assert w.newest("iss").seq == 5  # type: ignore[union-attr]
    assert w.newest("nope") is None


def test_renditions_listed_only_once_they_have_segments() -> None:
    w = LiveWindow(window=6, segment_duration=D)
    assert w.feeds() == []
    assert w.master("iss") is None
    w.set_init("iss", info("360p", 700_000), b"init-360")
    w.set_init("iss", info("240p", 400_000), b"init-240")
    assert w.renditions("iss") == []
    assert w.master("iss") is None
    assert w.media("iss", "360p") is None
    assert w.init("iss", "360p") == b"init-360"  # inits are fetchable before segments

    w.add(seg(0, "360p"))
    assert [r.name for r in w.renditions("iss")] == ["360p"]
    master = m3u8.loads(w.master("iss") or "")
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8"]
    assert w.media("iss", "240p") is None

    w.add(seg(0, "240p"))
    master = m3u8.loads(w.master("iss") or "")
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "240p/index.m3u8"]
    assert w.feeds() == ["iss"]


def test_segments_without_init_are_not_in_the_master() -> None:
    w = LiveWindow(window=6, segment_duration=D)
    w.add(seg(0, "360p"))
    assert w.renditions("iss") == []
    assert w.master("iss") is None
    assert w.media("iss", "360p") is not None


def test_unknown_feed_and_rendition() -> None:
    w = LiveWindow(window=6, segment_duration=D)
    w.add(seg(0))
    assert w.listed("nope", "360p") == []
    assert w.listed("iss", "nope") == []
    assert w.media("nope", "360p") is None
    assert w.init("iss", "nope") is None
    assert w.segment("iss", "nope", 0) is None
    assert w.segment("nope", "360p", 0) is None
    assert w.segment("iss", "360p", 1) is None


def test_feeds_and_renditions_are_independent() -> None:
    w = LiveWindow(window=3, segment_duration=D)
    for s in range(5):
        w.add(seg(s, "360p", "a"))
    w.add(seg(100, "360p", "b"))
    assert w.feeds() == ["a", "b"]
    assert [s.seq for s in w.listed("a", "360p")] == [2, 3, 4]
    assert [s.seq for s in w.listed("b", "360p")] == [100]
    # same seq in another rendition is not a duplicate
    assert w.add(seg(4, "240p", "a"))


def test_media_playlist_target_duration_and_pdt() -> None:
    w = LiveWindow(window=3, segment_duration=D)
    for s in range(3):
        w.add(seg(s))
    pl = m3u8.loads(w.media("iss", "360p") or "")
    assert pl.target_duration == 2
    assert [x.program_date_time for x in pl.segments] == [T0 + timedelta(seconds=2 * s) for s in range(3)]


def test_discontinuity_numbering_is_stable_as_the_window_slides() -> None:
    w = LiveWindow(window=3, segment_duration=D)
    seen: dict[int, int] = {}  # seq -> discontinuity number, from every playlist it appeared in
    for s in [0, 1, 2, 4, 5, 6, 7, 8]:  # seq 3 never arrives
        w.add(seg(s))
        pl = m3u8.loads(w.media("iss", "360p") or "")
        number = pl.discontinuity_sequence or 0
        for x in pl.segments:
            if x.discontinuity:
                number += 1
            n = int(x.uri.split(".")[0])
            assert seen.setdefault(n, number) == number, f"segment {n} changed discontinuity number"
