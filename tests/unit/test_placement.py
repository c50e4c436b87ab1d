"""Where the transcoder pool puts each feed: spread over live members, off a member that failed."""

from __future__ import annotations

import pytest

from orbitcast.media.placement import NoMemberAlive, Placement


def all_alive(index: int) -> bool:
    return True


def test_feeds_spread_over_the_members_least_loaded_first() -> None:
    placement = Placement(3)
    assert [placement.assign(feed, all_alive) for feed in ("a", "b", "c", "d")] == [0, 1, 2, 0]
    assert placement.as_dict() == {"a": 0, "b": 1, "c": 2, "d": 0}


def test_a_member_that_does_not_answer_gets_no_feed_and_is_asked_once() -> None:
    placement = Placement(3)
    probed: list[int] = []

    def alive(index: int) -> bool:
        probed.append(index)
        return index != 0

    assert placement.assign("a", alive) == 1
    assert probed == [0, 1]  # the next candidate is asked only after one failed


def test_a_feed_moved_off_a_failed_member_goes_elsewhere_and_no_longer_counts_there() -> None:
    placement = Placement(2)
    assert placement.assign("a", all_alive) == 0
    assert placement.assign("b", all_alive) == 1
    # member 0 died under a: it is tried last, although it now holds nothing
    assert placement.assign("a", all_alive, avoid=0) == 1
    assert placement.assign("c", all_alive) == 0  # a left member 0: it is the least loaded


def test_the_avoided_member_takes_the_feed_when_no_other_answers() -> None:
    placement = Placement(2)
    assert placement.assign("a", lambda i: i == 0, avoid=0) == 0


def test_no_live_member_raises_and_leaves_the_placement_as_it_was() -> None:
    placement = Placement(2)
    placement.assign("a", all_alive)
    with pytest.raises(NoMemberAlive):
        placement.assign("a", lambda i: False, avoid=0)
    assert placement.as_dict() == {"a": 0}


def test_a_pool_cap_stops_standbys_only_highest_first() -> None:
    p = Placement(4)
    assert p.to_park(None) == set()
    assert p.to_park(1) == {1, 2, 3}, "no feed yet: one member stays"
    assert [p.assign(feed, all_alive) for feed in ("a", "b")] == [0, 1]
    assert p.to_park(2) == {2, 3}
    assert p.to_park(1) == {2, 3}, "a member that runs a feed is never stopped"
    assert p.to_park(3) == {3}
    assert p.to_park(4) == set() and p.to_park(9) == set()
