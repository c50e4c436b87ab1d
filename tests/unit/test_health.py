"""Backoff between retries and the feed health users see in /api/feeds."""

from __future__ import annotations

import random
import time

import pytest

from orbitcast.health import Backoff, FeedHealth


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


def test_feed_health_transitions() -> None:
    h = FeedHealth("iss")
    assert h.state == "starting" and h.reason is None and h.retries == 0
    before = time.time()
    h.to("failed", "source not found: x", retry_at=time.time() + 2.0)
    assert h.state == "failed" and h.reason == "source not found: x"
    assert h.retries == 1
    assert h.since >= before
    since = h.since
    time.sleep(0.01)
    h.to("failed", "source not found: x", retry_at=time.time() + 4.0)
    assert h.retries == 2
    assert h.since == since  # same state and reason: the failure did not start anew
    h.to("failed", "invalid data")
    assert h.since > since
    h.to("live")
    assert h.state == "live" and h.reason is None and h.retry_at is None
    assert h.retries == 3  # a count of failures, kept


def test_feed_health_as_dict() -> None:
    h = FeedHealth("iss")
    h.to("failed", "boom", retry_at=time.time() + 2.0)
    h.media_time = 12.5
    d = h.as_dict()
    assert d["feed"] == "iss" and d["state"] == "failed" and d["reason"] == "boom"
    assert d["retries"] == 1 and d["media_time"] == 12.5
    assert d["retry_in"] == pytest.approx(2.0, abs=0.15)
    assert "retry_at" not in d
    h.to("live")
    assert h.as_dict()["retry_in"] is None
    h.to("failed", "late", retry_at=time.time() - 5)
    assert h.as_dict()["retry_in"] == 0.0
