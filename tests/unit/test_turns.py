"""Batches of a feed taken in the order of their numbers, whichever thread runs each."""

from __future__ import annotations

import threading
import time

from orbitcast.media.turns import Turns


def run_batches(turns: Turns, numbers: list[int | None], stagger: float = 0.05) -> list[int | None]:
    """Each number in a thread of its own, started in the order given; the order they ran in."""
    ran: list[int | None] = []

    def take(n: int | None) -> None:
        with turns.turn(n):
            ran.append(n)
            time.sleep(0.01)

    threads = []
    for n in numbers:
        threads.append(threading.Thread(target=take, args=(n,)))
        threads[-1].start()
        time.sleep(stagger)
    for t in threads:
        t.join(5)
    return ran


def test_a_batch_that_arrives_before_the_one_it_follows_waits_for_it() -> None:
    turns = Turns()
    assert run_batches(turns, [1]) == [1]
    assert run_batches(turns, [3, 2]) == [2, 3]


def test_the_first_batch_a_transcoder_sees_sets_the_order() -> None:
    turns = Turns()
    started = time.monotonic()
    assert run_batches(turns, [41, 42]) == [41, 42]  # a feed moved here mid-stream
    assert time.monotonic() - started < 0.5, "neither waited for a batch 40 that never comes"


def test_a_numbering_that_starts_again_goes_in_at_once() -> None:
    turns = Turns()
    run_batches(turns, [7, 8])
    started = time.monotonic()
    assert run_batches(turns, [1, 2]) == [1, 2]  # the feed's actor restarted
    assert time.monotonic() - started < 0.5


def test_a_predecessor_that_never_comes_holds_a_batch_only_for_the_bound() -> None:
    turns = Turns(wait_s=0.2)
    run_batches(turns, [1])
    started = time.monotonic()
    assert run_batches(turns, [5]) == [5]
    assert 0.2 <= time.monotonic() - started < 1.0
    assert run_batches(turns, [6]) == [6]


def test_unnumbered_batches_go_in_as_they_come() -> None:
    turns = Turns()
    assert run_batches(turns, [None, None]) == [None, None]
