"""The seq a feed may forget is the one finished with the last hand-off its packager took."""

from __future__ import annotations

import pytest

from orbitcast.media.handoffs import MAX_RESENDS, HandOffs
from orbitcast.standby import NotThisIncarnation, Standby, check_incarnation


def test_a_seq_is_forgotten_only_once_its_hand_off_was_taken() -> None:
    taken: set[str] = set()
    offs: HandOffs[str] = HandOffs(limit=8)
    assert offs.taken_through(None) is None
    offs.add("a", 10)  # seqs through 10 finished in every rung, handed off in "a"
    offs.settle(lambda r: r in taken, lambda r: None)
    # The transcoder says 10 is finished, but "a" may still die with its process.
    assert offs.taken_through(10) is None
    taken.add("a")
    offs.add("b", 11)
    offs.settle(lambda r: r in taken, lambda r: None)
    assert offs.taken_through(11) == 10 and len(offs) == 1
    taken.add("b")
    offs.settle(lambda r: r in taken, lambda r: None)
    assert offs.taken_through(11) == 11 and len(offs) == 0


def test_over_the_limit_the_oldest_is_waited_for_and_a_failure_is_raised_once() -> None:
    got: list[str] = []

    def get(ref: str) -> None:
        got.append(ref)
        if ref == "bad":
            raise RuntimeError("the packager refused it")

    offs: HandOffs[str] = HandOffs(limit=1)
    offs.add("bad", 5)
    offs.add("next", 6)
    with pytest.raises(RuntimeError):
        offs.settle(lambda r: False, get)
    offs.settle(lambda r: False, get)  # within the limit now: nothing is waited for
    assert got == ["bad"] and offs.taken_through(6) is None and len(offs) == 1


class Died(Exception):
    """What Ray raises for a call to an actor whose process died."""


def test_hand_offs_to_a_packager_that_died_go_again_in_order_to_its_standby() -> None:
    """The primary dies with three hand-offs in flight, the first of them taken: the other two
    go to the standby, oldest first, and the feed is told nothing failed."""
    packagers = Standby(["primary", "standby"])
    log: list[tuple[str, str]] = []  # (packager, payload) in the order sent
    dead: set[str] = set()
    taken: set[tuple[str, str]] = set()

    def send(target: str, payload: str) -> tuple[str, str]:
        log.append((target, payload))
        return (target, payload)

    def get(ref: tuple[str, str]) -> None:
        if ref[0] in dead and ref not in taken:
            raise Died(ref[0])

    def fail_over(err: BaseException):
        if not isinstance(err, Died):
            return None
        target = packagers.fail_over()
        return lambda payload: send(target, payload)

    offs: HandOffs[tuple[str, str]] = HandOffs(limit=8)
    for seq, payload in enumerate(["p1", "p2", "p3"], start=1):
        offs.add(send(packagers.active, payload), seq, payload)
    taken.add(("primary", "p1"))
    dead.add("primary")
    # every call to the dead one is done (failed); the standby's are done once sent
    offs.settle(lambda r: r[0] in dead or r[0] == "standby", get, fail_over)
    assert log[3:] == [("standby", "p2"), ("standby", "p3")]
    assert packagers.active == "standby"
    assert len(offs) == 0 and offs.taken_through(3) == 3


def test_the_packagers_own_error_is_not_sent_to_the_standby() -> None:
    packagers = Standby(["primary", "standby"])

    def get(ref: str) -> None:
        raise RuntimeError("the gateway does not know the edge")

    def fail_over(err: BaseException):
        return (lambda payload: packagers.fail_over()) if isinstance(err, Died) else None

    offs: HandOffs[str] = HandOffs(limit=8)
    offs.add("ref", 1, "payload")
    with pytest.raises(RuntimeError):
        offs.settle(lambda r: True, get, fail_over)
    assert packagers.active == "primary" and len(offs) == 0


def test_when_every_packager_keeps_dying_the_feed_sees_the_failure() -> None:
    """Sent again MAX_RESENDS times without one taken: raised, and its seqs stay in the
    feed's replay (taken_through says nothing was taken)."""
    packagers = Standby(["primary", "standby"])
    sent: list[str] = []

    def get(ref: str) -> None:
        raise Died(ref)

    def fail_over(err: BaseException):
        target = packagers.fail_over()
        return lambda payload: sent.append(target) or target

    offs: HandOffs[str] = HandOffs(limit=0)  # over the limit: each is waited for
    with pytest.raises(Died):
        offs.add("primary", 7, "payload")
        offs.settle(lambda r: True, get, fail_over)
    assert sent == ["standby", "primary", "standby", "primary"] and len(sent) == MAX_RESENDS
    assert len(offs) == 0


def test_a_standby_of_one_fails_over_to_itself() -> None:
    one = Standby(["only"])
    assert one.fail_over() == "only" and one.active == "only"
    with pytest.raises(ValueError):
        Standby([])


def test_a_call_meant_for_a_process_that_died_is_refused_by_the_one_started_in_its_place() -> None:
    check_incarnation("b7", "b7")
    check_incarnation("b7", None)  # no standby: whichever process runs it
    with pytest.raises(NotThisIncarnation):
        check_incarnation("c9", "b7")
    packagers = Standby(["primary", "standby"])
    packagers.incarnations = ["b7", "d1"]
    packagers.fail_over()  # the primary died: its next incarnation is to be asked
    assert packagers.active == "standby" and packagers.incarnations == [None, "d1"]
    packagers.started_again()  # the standby refused a call: it too was started again since
    assert packagers.incarnations == [None, None]


def test_a_member_started_anew_keeps_to_the_packager_that_has_the_feed() -> None:
    """The primary died earlier and its successor stands by; the standby publishes. A pool
    member Ray started again asks both and hands off to the standby, not to the first."""
    packagers = Standby(["first", "second"])
    packagers.found_publishing([("a1", 0.0), ("b2", 1796686000.5)])
    assert packagers.found and packagers.active == "second" and packagers.incarnations == ["a1", "b2"]
    fresh = Standby(["first", "second"])
    fresh.found_publishing([None, ("b2", 0.0)])  # nothing published yet; the first still starting
    assert fresh.active == "first" and fresh.incarnations == [None, "b2"]
    start = Standby(["first", "second"])
    start.found_publishing([("a1", 0.0), ("b2", 0.0)])  # a pipeline starting: the first
    assert start.active == "first"
