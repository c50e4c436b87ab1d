"""A recipient's queue on a clock the test turns: new messages oldest first, a failed one waits
out its own backoff without blocking the others, then goes first; bounded; dead letters."""

from __future__ import annotations

import threading
import time

import pytest

from orbitcast.gateway.dead_letters import DeadLetter, DeadLetters
from orbitcast.gateway.delivery import RetryPolicy, refused_for_good
from orbitcast.gateway.errors import Unavailable
from orbitcast.gateway.queues import QueuedMessage, RecipientQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _message(i: int) -> QueuedMessage:
    return QueuedMessage(f"{i:016x}", "*ORBPACK", "*ORBEDGE", 1_700_000_000, "00" * 24, "11" * 40)


def _queue(n: int, max_length: int = 10) -> tuple[RecipientQueue, Clock, list[QueuedMessage]]:
    clock = Clock()
    queue = RecipientQueue("*ORBEDGE", max_length, clock)
    messages = [_message(i) for i in range(n)]
    for m in messages:
        queue.put(m)
    return queue, clock, messages


def _ids(messages: list[QueuedMessage]) -> list[str]:
    return [m.message_id for m in messages]


def test_a_message_waiting_for_its_retry_does_not_block_the_ones_behind_it() -> None:
    queue, clock, m = _queue(4)
    first = queue.take(1, timeout=0)
    assert _ids(first) == _ids(m[:1])
    queue.retry(first[0], delay=1.0)
    assert _ids(queue.take(2, timeout=0)) == _ids(m[1:3])  # the retry is not due: the next ones go
    clock.now += 1.0
    # due again: it goes before the newer message still waiting
    assert _ids(queue.take(2, timeout=0)) == [m[0].message_id, m[3].message_id]
    assert queue.depth() == {"queued": 4, "retrying": 0, "oldest_s": 1.0}


def test_take_returns_nothing_while_only_a_retry_waits() -> None:
    queue, clock, m = _queue(1)
    queue.retry(queue.take(1, timeout=0)[0], delay=5.0)
    assert queue.take(1, timeout=0) == []
    assert queue.depth()["retrying"] == 1 and len(queue) == 1


def test_release_puts_untried_messages_back_in_front_in_order() -> None:
    queue, _, m = _queue(5)
    taken = queue.take(4, timeout=0)
    queue.release(taken[2:])  # a batch answered for its first two only
    assert queue.done(taken[0]) and queue.done(taken[1])
    assert _ids(queue.take(5, timeout=0)) == _ids(m[2:])


def test_a_new_worker_reclaims_what_an_old_one_had_in_flight() -> None:
    queue, _, m = _queue(3)
    queue.take(2, timeout=0)
    queue.reclaim()
    assert _ids(queue.take(5, timeout=0)) == _ids(m)


def test_the_bound_counts_messages_in_flight_and_retrying() -> None:
    queue, _, m = _queue(2, max_length=2)
    queue.retry(queue.take(1, timeout=0)[0], delay=1.0)
    with pytest.raises(Unavailable):
        queue.put(_message(9))
    queue.remove(m[0])  # a dead letter frees its place
    queue.put(_message(9))


def test_expire_takes_old_new_and_retrying_messages_but_not_those_in_flight() -> None:
    queue, clock, m = _queue(3)
    in_flight, retrying = queue.take(2, timeout=0)
    queue.retry(retrying, delay=100.0)
    clock.now += 10
    queue.put(_message(7))
    assert sorted(_ids(queue.expire(max_age=5))) == sorted(_ids([m[1], m[2]]))
    assert _ids(queue.snapshot()) == [m[0].message_id, _message(7).message_id]
    assert queue.done(in_flight)


def test_pull_mode_ack_takes_any_pending_message_once() -> None:
    queue, _, m = _queue(3)
    queue.retry(queue.take(1, timeout=0)[0], delay=1.0)
    assert queue.ack(m[0].message_id) is m[0] and queue.ack(m[2].message_id) is m[2]
    assert queue.ack(m[2].message_id) is None
    assert _ids(queue.snapshot()) == _ids(m[1:2])


def test_retry_delays_grow_to_the_cap_and_which_answers_are_final() -> None:
    policy = RetryPolicy(initial_s=0.05, factor=2.0, max_s=1.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert [s for s in (400, 401, 404, 408, 413, 425, 429, 500, 503, 302) if refused_for_good(s)] == [400, 401, 404, 413]


def test_dead_letters_count_all_keep_the_newest_and_the_alarm_falls_after_its_window() -> None:
    book = DeadLetters(keep=2, alarm_window_s=60)
    raised = [book.add(DeadLetter(f"{i:016x}", "*ORBPACK", "*ORBEDGE", "http_500", 3, 1.5, 1000.0 + i))
              for i in range(4)]
    assert raised == [True, False, False, False]  # one log line per alarm, not per letter
    assert book.count("*ORBEDGE") == 4 and book.count() == 4
    assert [letter.message_id for letter in book.letters("*ORBEDGE")] == [f"{2:016x}", f"{3:016x}"]
    assert book.report("*ORBEDGE", now=1010.0)["alarm"] is True
    assert book.report("*ORBEDGE", now=1064.0)["alarm"] is False
    assert book.refused("*ORBEDGE", "queue_full", 1070.0) is True
    report = book.report("*ORBEDGE", now=1070.0)
    assert report["refused_queue_full"] == 1 and report["last_reason"] == "queue_full" and report["alarm"]
    assert book.report("*NOBODY1", now=0)["dead_letters"] == 0


def test_wake_ends_a_waiting_take_at_once() -> None:
    queue = RecipientQueue("*ORBEDGE", 10)
    got: list[list[QueuedMessage]] = []
    waiter = threading.Thread(target=lambda: got.append(queue.take(1, timeout=30)))
    waiter.start()
    time.sleep(0.05)
    started = time.monotonic()
    queue.wake()
    waiter.join(5)
    assert got == [[]] and time.monotonic() - started < 1
