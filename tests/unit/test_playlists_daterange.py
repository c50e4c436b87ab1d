"""The analysis stage's tags in the live media playlists: one EXT-X-DATERANGE per tagged segment
(draft-pantos-hls-rfc8216bis 4.4.5.1), parsed back with the `m3u8` package; kept in Playlist
Delta Updates (6.2.5.1), old ones left out of v2 updates with the recently removed named; a late tag re-renders the cached playlist once; set once; carried to a
replica by the window's updates and snapshots."""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import m3u8
import pytest

from orbitcast.analysis.results import SegmentSummary
from orbitcast.delivery.blocking import Readiness
from orbitcast.delivery.playlists import (
    EXPRESSION_CLASS,
    ExpressionTag,
    MediaView,
    RenditionInfo,
    SegmentLine,
    iso_ms,
    media_playlist,
)
from orbitcast.delivery.policy import PlaylistPolicy
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.updates import Batch
from orbitcast.delivery.window import LiveWindow, PartUpdate, TagUpdate
from orbitcast.segment import Part, Segment

T0 = datetime(2024, 5, 17, 12, 30, 0, 250000, tzinfo=timezone.utc)
POLICY = PlaylistPolicy(segment_duration=1.0, part_target=0.25, part_hold_back=0.75, window=12, keep=14,
                        parts_per_segment=4)
BASE = 1_700_000_000  # seqs of media whose timeline starts at the wall clock
RUNGS = ("360p", "240p")


def happy(seq: int, confidence: float = 0.912345) -> SegmentSummary:
    others = (1 - confidence) / 6
    probs = {k: others for k in ("angry", "disgust", "fear", "sad", "surprise", "neutral")}
    return SegmentSummary(seq, frames=2, faces=1, expression="happy", confidence=confidence,
                          probabilities={**probs, "happy": confidence}, start=seq + 0.1, end=seq + 0.6)


def empty(seq: int) -> SegmentSummary:
    return SegmentSummary(seq, frames=2, faces=0, start=seq + 0.1, end=seq + 0.6)


def when(seq: int) -> datetime:
    return datetime.fromtimestamp(seq, timezone.utc)


def part(seq: int, i: int, rendition: str = "360p") -> Part:
    start = seq + i * 0.25
    return Part("iss", rendition, seq, i, start, 0.25, i == 0, datetime.fromtimestamp(start, timezone.utc),
                f"{rendition}/{seq}.{i}".encode())


def segment(seq: int, rendition: str = "360p") -> Segment:
    data = b"".join(part(seq, i, rendition).data for i in range(4))
    return Segment("iss", rendition, seq, float(seq), 1.0, when(seq), data)


def window() -> LiveWindow:
    w = LiveWindow(POLICY)
    for r in RUNGS:
        w.set_init("iss", RenditionInfo(r, 640, 360, 700_000, 650_000, "avc1.64001e,mp4a.40.2", 30.0), f"init-{r}".encode())
    return w


def feed(w: LiveWindow, first: int, last: int, open_parts: int = 2) -> None:
    """Segments first..last closed in every rung, then `open_parts` parts of the next."""
    for seq in range(first, last + 1):
        for r in RUNGS:
            for i in range(4):
                w.add_part(part(seq, i, r))
            w.add_segment(segment(seq, r))
    for r in RUNGS:
        for i in range(open_parts):
            w.add_part(part(last + 1, i, r))


def ranges(text: str) -> dict[str, m3u8.model.DateRange]:
    pl = m3u8.loads(text)
    # m3u8 hangs a DATERANGE on the next segment, or on its first part when it lists parts
    found = [d for s in pl.segments for d in [*s.dateranges, *(d for p in s.parts for d in p.dateranges)]]
    assert len({d.id for d in found}) == len(found), "an ID twice in one playlist"
    return {d.id: d for d in found}


def attrs(d: m3u8.model.DateRange) -> dict[str, str]:
    return dict(d.x_client_attrs)


# -- the tag as written ------------------------------------------------------------------------
def sline(seq: int, tag: ExpressionTag | None = None, gap: bool = False) -> SegmentLine:
    return SegmentLine(seq, 1.0, T0 + timedelta(seconds=seq - 10), gap, tag=tag)


def test_a_tagged_segment_carries_one_daterange_dated_as_the_segment() -> None:
    view = MediaView(10, "0123456789ab", (sline(10, ExpressionTag(1, "happy", 0.9123)), sline(11, ExpressionTag(0)),
                                         sline(12), sline(13, ExpressionTag(2, "neutral", 0.5))), None, (), (14, 0))
    text = media_playlist(view, POLICY)
    found = ranges(text)
    assert set(found) == {"expr-10", "expr-11", "expr-13"}  # no summary, no tag
    d = found["expr-10"]
    assert d.class_ == EXPRESSION_CLASS == "org.orbitcast.expression"
    assert d.start_date == iso_ms(T0) and d.duration == 1.0
    assert attrs(d) == {"x_faces": "1", "x_expression": '"happy"', "x_confidence": "0.912"}
    assert attrs(found["expr-11"]) == {"x_faces": "0"}  # no face: no expression attributes
    assert attrs(found["expr-13"])["x_faces"] == "2"
    # the playlist's segments are what they were; PDT is there (4.4.5.1 needs it)
    pl = m3u8.loads(text)
    assert [s.uri for s in pl.segments if s.uri] == ["10.m4s", "11.m4s", "12.m4s", "13.m4s"]
    lines = text.splitlines()
    i = lines.index(next(line for line in lines if line.startswith('#EXT-X-DATERANGE:ID="expr-10"')))
    assert lines[i + 1] == f"#EXT-X-PROGRAM-DATE-TIME:{iso_ms(T0)}"  # just before its segment
    assert lines[i] == ('#EXT-X-DATERANGE:ID="expr-10",CLASS="org.orbitcast.expression",'
                        f'START-DATE="{iso_ms(T0)}",DURATION=1.00000,X-FACES=1,X-EXPRESSION="happy",X-CONFIDENCE=0.912')


def test_a_delta_update_keeps_the_dateranges_of_the_segments_it_skips() -> None:
    segs = tuple(sline(s, ExpressionTag(s % 2, "happy" if s % 2 else None, 0.8 if s % 2 else None)) for s in range(10, 30))
    view = MediaView(10, "0123456789ab", segs, None, (), (30, 0))
    full, delta = media_playlist(view, POLICY), media_playlist(view, POLICY, skip=True)
    pl = m3u8.loads(delta)
    assert pl.skip.skipped_segments > 0
    # the skip replaces segments, not metadata: every range of the full playlist is there
    assert {k: (v.start_date, attrs(v)) for k, v in ranges(delta).items()} == \
        {k: (v.start_date, attrs(v)) for k, v in ranges(full).items()}
    assert len(ranges(delta)) == 20
    assert "RECENTLY-REMOVED-DATERANGES" not in delta  # only for v2
    assert m3u8.loads(full).server_control.can_skip_until == 6.0
    assert m3u8.loads(full).server_control.can_skip_dateranges == "YES"


# -- the window: late tags, set once, every rung ---------------------------------------------------
def test_a_late_tag_re_renders_the_cached_playlist_of_every_rung() -> None:
    w = window()
    feed(w, BASE, BASE + 4)
    before = {r: w.media_bytes("iss", r) for r in RUNGS}
    assert all(b is w.media_bytes("iss", r) for r, b in before.items())  # cached: rendered once
    assert "#EXT-X-DATERANGE" not in before["360p"].decode()
    assert w.set_tag("iss", happy(BASE + 3))
    for r in RUNGS:
        text = w.media_bytes("iss", r).decode()
        assert text != before[r].decode()
        d = ranges(text)[f"expr-{BASE + 3}"]
        assert d.start_date == iso_ms(when(BASE + 3)) and attrs(d)["x_expression"] == '"happy"'
        # nothing else changed: the tag is one line more
        assert set(text.splitlines()) - set(before[r].decode().splitlines()) == {
            next(line for line in text.splitlines() if line.startswith("#EXT-X-DATERANGE"))}
        assert w.media_bytes("iss", r) is w.media_bytes("iss", r)  # cached again
    # set once: a second summary for the seq changes nothing
    text = w.media("iss", "360p")
    assert not w.set_tag("iss", empty(BASE + 3))
    assert w.media("iss", "360p") is text
    assert attrs(ranges(text)[f"expr-{BASE + 3}"])["x_faces"] == "1"


def test_a_tag_before_its_segment_shows_when_the_segment_closes() -> None:
    w = window()
    feed(w, BASE, BASE + 2, open_parts=2)  # BASE+3 in progress: its parts listed, not closed
    assert w.set_tag("iss", happy(BASE + 3))
    assert f"expr-{BASE + 3}" not in ranges(w.media("iss", "360p"))  # no duration yet: not written
    for r in RUNGS:
        w.add_part(part(BASE + 4, 0, r))  # the next segment closes it from its parts
    found = ranges(w.media("iss", "360p"))
    assert found[f"expr-{BASE + 3}"].duration == pytest.approx(0.5)  # as listed: its two parts
    assert w.media("iss", "240p").count(f'ID="expr-{BASE + 3}"') == 1


def test_a_gap_gets_no_daterange_and_refused_summaries_never_reach_a_playlist() -> None:
    w = window()
    feed(w, BASE, BASE + 1, open_parts=0)
    feed(w, BASE + 3, BASE + 4)  # BASE+2 never came: a gap
    assert w.set_tag("iss", happy(BASE + 2))
    text = w.media("iss", "360p")
    assert "#EXT-X-GAP" in text and f"expr-{BASE + 2}" not in text
    bad = [SegmentSummary(BASE + 4, 1, 1, expression='happy",X-EVIL="1', confidence=0.5),
           SegmentSummary(BASE + 4, 1, 1, expression="happy", confidence=1.5),
           SegmentSummary(BASE + 4, 1, -1),
           SegmentSummary(BASE + 4, 1, 0, confidence=0.3)]
    assert not any(w.set_tag("iss", s) for s in bad)
    assert "#EXT-X-DATERANGE" not in w.media("iss", "360p")
    # a tag of a segment older than every rendition's keep is of no use
    assert not w.set_tag("iss", happy(BASE - 100))


def test_tags_leave_with_their_segments() -> None:
    w = window()
    feed(w, BASE, BASE + 2)
    for seq in range(BASE, BASE + 3):
        assert w.set_tag("iss", happy(seq))
    feed(w, BASE + 3, BASE + 40)
    assert w.tag("iss", BASE) is None  # pruned with the segment bytes (keep)
    found = ranges(w.media("iss", "360p"))
    assert not found


def test_tags_reach_a_replica_by_updates_and_snapshot_and_wake_no_held_request() -> None:
    edge = window()
    feed(edge, BASE, BASE + 8)
    for seq in range(BASE + 2, BASE + 8):
        assert edge.apply(TagUpdate("iss", happy(seq) if seq % 2 else empty(seq)))
    late = LiveWindow(POLICY)  # a replica that joins now: a snapshot
    for u in edge.snapshot():
        late.apply(u)
    assert [u for u in edge.snapshot() if isinstance(u, TagUpdate)][0] == TagUpdate("iss", empty(BASE + 2))
    for r in RUNGS:
        for skip in (False, True):
            assert late.media("iss", r, skip) == edge.media("iss", r, skip)

    async def held() -> None:
        state = ReplicaState(POLICY)
        state.apply(Batch("e", 1, edge.snapshot(), True, {}))
        wanted = lambda: state.window.playlist_ready("iss", "360p", BASE + 9, 3)  # noqa: E731
        assert wanted() is Readiness.WAIT
        task = asyncio.create_task(state.wait_until("iss", "360p", wanted, 5.0))
        await asyncio.sleep(0.05)
        arrived = dict(state.arrived)
        assert state.apply(Batch("e", 2, [TagUpdate("iss", happy(BASE + 8))], False, {})) == 0
        await asyncio.sleep(0.05)
        assert not task.done() and state.arrived == arrived  # a tag is not the part it waits for
        assert f"expr-{BASE + 8}" in state.window.media("iss", "360p")  # but the playlist has it
        state.apply(Batch("e", 3, [PartUpdate(part(BASE + 9, i)) for i in range(4)], False, {}))
        assert await task is Readiness.READY

    asyncio.run(held())


def test_pickled_updates_cross_as_they_are() -> None:
    u = TagUpdate("iss", happy(BASE))
    assert pickle.loads(pickle.dumps(u)) == u
    assert SegmentSummary.from_dict(happy(BASE).as_dict()).expression == "happy"
    with pytest.raises(ValueError):
        SegmentSummary.from_dict({"seq": "x", "frames": 1, "faces": 0})
    with pytest.raises(ValueError):
        SegmentSummary.from_dict({"frames": 1})


# -- _HLS_skip=v2: old date ranges left out, the recently removed named (6.2.5.1) ---------------
def test_a_v2_delta_update_leaves_out_old_ranges_and_names_the_recently_removed() -> None:
    segs = tuple(SegmentLine(s, 1.0, T0 + timedelta(seconds=s - 10), tag=ExpressionTag(1, "happy", 0.8), tag_old=s < 27)
                 for s in range(10, 30))
    # a tag that came late for a segment far back is new to every client: it stays
    segs = tuple(replace(line, tag_old=False) if line.seq == 12 else line for line in segs)
    view = MediaView(10, "0123456789ab", segs, None, (), (30, 0), removed_tags=(7, 9))
    full = media_playlist(view, POLICY)
    yes, v2 = media_playlist(view, POLICY, skip=True), media_playlist(view, POLICY, skip=True, skip_dateranges=True)
    assert len(ranges(full)) == len(ranges(yes)) == 20  # only v2 leaves ranges out
    pl = m3u8.loads(v2)
    assert pl.version == 10  # section 8: an EXT-X-SKIP that replaces date ranges
    assert pl.skip.skipped_segments == m3u8.loads(yes).skip.skipped_segments > 0
    assert pl.skip.recently_removed_dateranges == "expr-7\texpr-9"
    assert sorted(ranges(v2)) == ["expr-12", "expr-27", "expr-28", "expr-29"]
    assert "RECENTLY-REMOVED-DATERANGES" not in yes
    # nothing to skip: the full playlist, whatever was asked
    short = MediaView(25, "0123456789ab", segs[15:], None, (), (30, 0), removed_tags=(7,))
    assert media_playlist(short, POLICY, skip=True, skip_dateranges=True) == media_playlist(short, POLICY)


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def merged(have: dict[str, dict], update: str) -> dict[str, dict]:
    """What a client holds after merging a delta update into its date ranges (hls.js's
    mergeDateRanges): drop the recently removed, add or update what the update lists."""
    pl = m3u8.loads(update)
    out = dict(have)
    removed = (pl.skip.recently_removed_dateranges or "") if pl.skip else ""
    for i in filter(None, removed.split("\t")):
        out.pop(i, None)
    out.update({k: attrs(v) for k, v in ranges(update).items()})
    return out


def test_a_client_merging_v2_updates_holds_the_ranges_of_the_full_playlist() -> None:
    """A player that reloads every part with _HLS_skip=v2 (as hls.js does once the playlist
    offers CAN-SKIP-DATERANGES) and merges each update ends with the full playlist's ranges,
    also with tags that come late, early or not at all, and a DVR window that slides."""
    clock = Clock()
    w = LiveWindow(replace(POLICY, dvr=20), clock=clock)
    for r in RUNGS:
        w.set_init("iss", RenditionInfo(r, 640, 360, 700_000, 650_000, "avc1.64001e,mp4a.40.2", 30.0), f"init-{r}".encode())
    have = {k: attrs(v) for k, v in ranges(w.media("iss", "360p") or "#EXTM3U\n").items()}
    sizes = []
    for seq in range(BASE, BASE + 60):
        for i in range(4):
            clock.t += 0.25
            for r in RUNGS:
                w.add_part(part(seq, i, r))
            if i == 1 and seq % 3:
                w.set_tag("iss", happy(seq - 1))  # a second behind its segment, most of them
            if i == 2 and seq % 7 == 0:
                w.set_tag("iss", happy(seq - 9))  # far behind: new to the client all the same
            if w.media("iss", "360p") is None:
                continue
            update = w.media("iss", "360p", skip=True, skip_dateranges=True)
            have = merged(have, update)
            assert have == {k: attrs(v) for k, v in ranges(w.media("iss", "360p")).items()}, (seq, i)
            sizes.append((len(update), len(w.media("iss", "360p", skip=True))))
        for r in RUNGS:
            w.add_segment(segment(seq, r))
    # with a full DVR window the v2 updates no longer carry a range per listed segment
    v2, yes = sizes[-1]
    assert "RECENTLY-REMOVED-DATERANGES" in w.media("iss", "360p", skip=True, skip_dateranges=True)
    assert w.media("iss", "360p", skip=True).count("#EXT-X-DATERANGE") >= 12
    assert w.media("iss", "360p", skip=True, skip_dateranges=True).count("#EXT-X-DATERANGE") <= 6
    assert v2 < yes
