"""The feed's replay buffer keeps exactly the units of the segments not yet finished."""

import pytest

from orbitcast.media.replay import NotOpenHere, Openings, ReplayBuffer
from orbitcast.media.units import MediaUnit

D = 2.0


def units(start: float, end: float, step: float = 0.5) -> list[MediaUnit]:
    out, t = [], start
    while t < end - 1e-9:
        out.append(MediaUnit("video", b"x", t, 1000.0 + t))
        t += step
    return out


def test_keeps_everything_until_a_segment_is_finished():
    buf = ReplayBuffer(D)
    buf.add(units(100.0, 103.0))
    buf.finished_through(None)
    assert [u.time for u in buf.pending()] == [100.0, 100.5, 101.0, 101.5, 102.0, 102.5]


def test_forgets_finished_segments_and_keeps_the_rest_whole():
    buf = ReplayBuffer(D)
    buf.add(units(100.0, 105.0))  # seqs 50, 51, 52
    buf.finished_through(50)
    assert [u.time for u in buf.pending()] == [102.0, 102.5, 103.0, 103.5, 104.0, 104.5]
    buf.finished_through(51)
    assert [u.time for u in buf.pending()] == [104.0, 104.5]
    assert len(buf) == 2


def test_a_stale_report_does_not_bring_anything_back():
    buf = ReplayBuffer(D)
    buf.add(units(100.0, 104.0))
    buf.finished_through(51)
    buf.finished_through(50)
    assert buf.pending() == []


def test_a_member_started_again_takes_no_batch_of_a_feed_until_the_replay_opens_it() -> None:
    openings = Openings()
    openings.check("iss", 1, opening=True)  # the feed's first batch
    openings.check("iss", 2, opening=False)
    # The member dies and Ray starts it again: batches 3 and 4 were queued for it meanwhile.
    again = Openings()
    with pytest.raises(NotOpenHere):
        again.check("iss", 3, opening=False)  # would open the feed in the middle of a segment
    again.check("iss", 5, opening=True)  # the replay, from the first unfinished segment
    with pytest.raises(NotOpenHere):
        again.check("iss", 4, opening=False)  # queued before the replay, arrived after it
    again.check("iss", 6, opening=False)
    with pytest.raises(NotOpenHere):
        again.check("other", 6, opening=False)
