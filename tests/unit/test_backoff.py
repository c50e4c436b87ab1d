"""The wait between retries, as a feed's source and the gateway's callback queues use it."""

from __future__ import annotations

import random

from orbitcast.backoff import Backoff


def test_backoff_grows_and_caps() -> None:
    b = Backoff(initial=1.0, factor=2.0, maximum=30.0, jitter=0.0)
    assert [b.next_delay() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert b.attempt == 8


def test_backoff_resets() -> None:
    b = Backoff(initial=0.5, factor=3.0, maximum=10.0, jitter=0.0)
    assert [b.next_delay() for _ in range(3)] == [0.5, 1.5, 4.5]
    b.reset()
    assert b.attempt == 0
    assert b.next_delay() == 0.5


def test_backoff_jitter_stays_within_bounds() -> None:
    random.seed(11)
    b = Backoff(initial=1.0, factor=2.0, maximum=4.0, jitter=0.1)
    delays = []
    for _ in range(200):
        b.reset()
        delays.append([b.next_delay() for _ in range(4)])
    for row in delays:
        for base, d in zip([1.0, 2.0, 4.0, 4.0], row):
            assert base * 0.9 <= d <= base * 1.1
    firsts = {round(r[0], 6) for r in delays}
    assert len(firsts) > 100  # jitter actually spreads retries


def test_backoff_defaults() -> None:
    b = Backoff()
    delays = [b.next_delay() for _ in range(12)]
    assert 0.9 <= delays[0] <= 1.1
    assert max(delays) <= 30.0 * 1.1
    assert delays[-1] >= 30.0 * 0.9


def test_backoff_does_not_overflow_after_many_attempts() -> None:
    b = Backoff(initial=1.0, factor=2.0, maximum=30.0, jitter=0.0, attempt=2000)
    assert b.next_delay() == 30.0
