"""Per-client limits: a request rate with bursts, and a count of requests held at once."""

from __future__ import annotations

import pytest

from orbitcast.ratelimit import HeldLimit, TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_refills_it() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10, burst=5, clock=clock)
    assert [buckets.allow("a") for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.1  # one token back
    assert buckets.allow("a") and not buckets.allow("a")
    clock.now += 10  # never more than the burst
    assert sum(buckets.allow("a") for _ in range(10)) == 5


def test_clients_are_limited_apart() -> None:
    buckets = TokenBuckets(rate=1, burst=1, clock=Clock())
    assert buckets.allow("a") and not buckets.allow("a")
    assert buckets.allow("b")


def test_the_table_of_clients_is_bounded_and_forgets_the_oldest() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_clients=2, clock=Clock())
    assert buckets.allow("a") and buckets.allow("b") and buckets.allow("c")
    assert len(buckets._buckets) == 2
    assert buckets.allow("a")  # forgotten: a fresh bucket


def test_held_requests_per_client_are_counted_and_given_back() -> None:
    held = HeldLimit(2)
    assert held.acquire("a") and held.acquire("a") and not held.acquire("a")
    assert held.acquire("b")
    held.release("a")
    assert held.held("a") == 1 and held.acquire("a")
    for _ in range(3):
        held.release("a")
    assert held.held("a") == 0


@pytest.mark.parametrize("rate,burst", [(0, 1), (-1, 5), (1, 0)])
def test_a_limit_that_admits_nothing_is_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate, burst)
