"""The live window when the ladder changes (the energy plan drops a rung and brings it back,
docs/energy.md): the dropped rung's playlist goes on in gaps, the multivariant playlist leaves
it out, nothing listed ever changes, and a replica rebuilt from a snapshot says the same."""

from __future__ import annotations

import dataclasses

import m3u8

from orbitcast.delivery.blocking import Readiness
from orbitcast.delivery.window import LiveWindow
from tests.unit.test_window import POLICY, PPS, S, part, whole, window

HI, LO = "720p", "360p"
BOTH, LOW = (HI, LO), (LO,)


def put(w: LiveWindow, seq: int, rungs: tuple[str, ...], upto: int = PPS, start: int = 0) -> None:
    """Parts of `seq` in every rung of `rungs` (each part saying that ladder), rung by rung as
    the packager gets them, then the segments once whole."""
    for i in range(start, upto):
        for r in (LO, HI):  # the rung kept on first: the harder order for the dropped one
            if r in rungs:
                assert w.add_part(dataclasses.replace(part(seq, i, r), ladder=rungs))
    if upto == PPS:
        for r in rungs:
            assert w.add_segment(whole(seq, r))


def media(w: LiveWindow, rendition: str) -> m3u8.M3U8:
    text = w.media("iss", rendition)
    assert text is not None
    return m3u8.loads(text)


def listing(pl: m3u8.M3U8) -> dict[int, tuple[str, bool, float, str]]:
    """MSN -> (URI, gap, EXTINF, PDT) of every listed segment."""
    segs = [s for s in pl.segments if s.uri is not None]
    return {pl.media_sequence + i: (s.uri, bool(s.gap_tag), s.duration, s.program_date_time.isoformat())
            for i, s in enumerate(segs)}


def masters(w: LiveWindow) -> list[str]:
    text = w.master("iss")
    assert text is not None
    return [p.uri.split("/")[0] for p in m3u8.loads(text).playlists]


def test_a_dropped_rung_goes_on_in_gaps_and_comes_back() -> None:
    w = window(renditions=(LO, HI))
    history: dict[str, list[m3u8.M3U8]] = {HI: [], LO: []}

    def look() -> None:
        for r in (HI, LO):
            history[r].append(media(w, r))

    for seq in (S, S + 1):
        put(w, seq, BOTH)
        look()
    assert masters(w) == [HI, LO]
    # dropped from S+2 on: halfway through S+2 the 720p playlist already lists S+2's parts as gaps
    put(w, S + 2, LOW, upto=2)
    look()
    hi = history[HI][-1]
    tail = hi.segments[-1]
    assert tail.uri is None and [p.uri for p in tail.parts] == [f"{S + 2}.0.m4s", f"{S + 2}.1.m4s"]
    assert all(p.gap == "YES" for p in tail.parts)
    assert hi.preload_hint is None, "no hint names a part that will not be made"
    assert masters(w) == [LO], "a player that starts now does not pick the dropped rung"
    put(w, S + 2, LOW, start=2)
    put(w, S + 3, LOW)
    look()
    hi, lo = history[HI][-1], history[LO][-1]
    got, want = listing(hi), listing(lo)
    assert max(got) == max(want) == S + 3, "the dropped rung's playlist keeps up"
    for msn in (S + 2, S + 3):
        uri, gap, extinf, pdt = got[msn]
        assert gap and (uri, extinf, pdt) == (want[msn][0], want[msn][2], want[msn][3]), "the span of the rung kept on"
    # blocking reloads of the dropped rung wait for the media of the rung kept on
    assert w.playlist_ready("iss", HI, S + 4, 0) is Readiness.WAIT
    put(w, S + 4, LOW, upto=1)
    assert w.playlist_ready("iss", HI, S + 4, 0) is Readiness.READY
    put(w, S + 4, LOW, start=1)
    look()
    # back from S+5: the 360p part comes first, the 720p playlist must not step back meanwhile
    assert w.add_part(dataclasses.replace(part(S + 5, 0, LO), ladder=BOTH))
    look()
    hi = history[HI][-1]
    assert max(listing(hi)) == S + 4 and hi.preload_hint.uri == f"{S + 5}.0.m4s"
    assert w.add_part(dataclasses.replace(part(S + 5, 0, HI), ladder=BOTH))
    put(w, S + 5, BOTH, start=1)
    put(w, S + 6, BOTH)
    look()
    assert masters(w) == [HI, LO]
    final = listing(history[HI][-1])
    assert [final[m][1] for m in range(S + 3, S + 7)] == [True, True, False, False]  # a window of 4
    # what a playlist listed never changes (6.2.1), and MEDIA-SEQUENCE never goes back
    for r in (HI, LO):
        for before, after in zip(history[r], history[r][1:]):
            assert after.media_sequence >= before.media_sequence
            a, b = listing(before), listing(after)
            assert all(b[m] == a[m] for m in a if m in b), r


def test_a_replica_rebuilt_from_a_snapshot_lists_the_same() -> None:
    w = window(renditions=(LO, HI))
    put(w, S, BOTH)
    for seq in range(S + 1, S + 4):
        put(w, seq, LOW)
    put(w, S + 4, LOW, upto=2)
    twin = LiveWindow(POLICY)
    for u in w.snapshot():
        twin.apply(u)
    for r in (HI, LO):
        assert twin.media("iss", r) == w.media("iss", r)
    assert twin.master("iss") == w.master("iss")


def test_without_a_ladder_a_lagging_rung_keeps_its_own_end() -> None:
    """Parts that say no ladder (an older transcoder): a rendition behind is behind, not dropped."""
    w = window(renditions=(LO, HI))
    for seq in (S, S + 1):
        for i in range(PPS):
            assert w.add_part(part(seq, i, LO))
        assert w.add_segment(whole(seq, LO))
    for i in range(PPS):
        assert w.add_part(part(S, i, HI))
    assert w.add_segment(whole(S, HI))
    assert max(listing(media(w, HI))) == S and masters(w) == [HI, LO]
