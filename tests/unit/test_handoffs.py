"""The seq a feed may forget is the one finished with the last hand-off its packager took."""

from __future__ import annotations

import pytest

from orbitcast.media.handoffs import HandOffs


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
