"""The log that carries the edge's window writes to the Delivery replicas (long polls)."""

from __future__ import annotations

import threading
import time

from orbitcast.delivery.updates import UpdateLog


def health() -> dict[str, dict]:
    return {"iss": {"state": "live"}}


def test_a_follower_gets_every_write_after_its_cursor_in_order() -> None:
    log = UpdateLog(lambda: ["SNAPSHOT"])
    first = log.since(None, 0, timeout=0, health=health)
    assert first.snapshot and first.updates == ["SNAPSHOT"] and first.version == 0
    for u in "abc":
        log.append(u)
    batch = log.since(first.epoch, first.version, timeout=0, health=health)
    assert (batch.updates, batch.version, batch.snapshot, batch.health) == (["a", "b", "c"], 3, False, health())
    log.append("d")
    assert log.since(batch.epoch, batch.version, timeout=0, health=health).updates == ["d"]


def test_a_long_poll_returns_as_soon_as_a_write_arrives() -> None:
    log = UpdateLog(lambda: [])
    epoch = log.epoch
    threading.Timer(0.2, log.append, args=("part",)).start()
    started = time.monotonic()
    batch = log.since(epoch, 0, timeout=5.0, health=health)
    waited = time.monotonic() - started
    assert batch.updates == ["part"] and 0.15 < waited < 2.0


def test_nothing_new_returns_empty_after_the_timeout() -> None:
    log = UpdateLog(lambda: [])
    log.append("x")
    started = time.monotonic()
    batch = log.since(log.epoch, 1, timeout=0.1, health=health)
    assert batch.updates == [] and not batch.snapshot and time.monotonic() - started >= 0.09


def test_a_follower_too_far_behind_gets_a_snapshot_and_one_of_another_edge_is_asked_for_its_window() -> None:
    log = UpdateLog(lambda: ["whole window"], capacity=4)
    for i in range(10):
        log.append(i)
    behind = log.since(log.epoch, 2, timeout=0, health=health)
    assert behind.snapshot and behind.updates == ["whole window"] and behind.version == 10
    just_in = log.since(log.epoch, 6, timeout=0, health=health)
    assert not just_in.snapshot and just_in.updates == [6, 7, 8, 9]  # versions 7-10
    # a follower of an edge before a restart hands its window over first (test_rebuild.py)
    restarted = log.since("an-older-edge", 10, timeout=0, health=health)
    assert restarted.adopt and not restarted.snapshot and restarted.updates == []
    ahead = log.since(log.epoch, 99, timeout=0, health=health)
    assert ahead.snapshot
