"""The feed health users see in /api/feeds."""

from __future__ import annotations

import time

import pytest

from orbitcast.health import FeedHealth


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
