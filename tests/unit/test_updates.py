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


def test_a_write_is_committed_once_every_follower_present_has_received_it() -> None:
    log = UpdateLog(lambda: [])
    a = log.since(log.epoch, 0, 0, health, "a", 0)
    b = log.since(log.epoch, 0, 0, health, "b", 0)
    assert (a.commit, b.commit) == (0, 0)
    log.append("part")
    a = log.since(log.epoch, 0, 0, health, "a", 0)
    assert a.updates == ["part"] and a.commit == 0  # b has not said it holds it
    a = log.since(log.epoch, 1, 0, health, "a", 0)
    assert a.updates == [] and a.commit == 0
    # a said it holds it: the answer that brings it to b commits it for b, and b's next poll
    # (saying it holds it too) for a
    b = log.since(log.epoch, 0, 0, health, "b", 0)
    assert b.updates == ["part"] and b.commit == 1
    log.since(log.epoch, 1, 0, health, "b", 0)
    assert log.since(log.epoch, 1, 0, health, "a", 0).commit == 1


def test_a_lone_follower_is_shown_a_write_with_the_answer_that_brings_it() -> None:
    log = UpdateLog(lambda: [])
    log.since(log.epoch, 0, 0, health, "a", 0)
    log.append("part")
    batch = log.since(log.epoch, 0, 0, health, "a", 0)
    assert batch.updates == ["part"] and batch.commit == 1


def test_a_follower_waiting_for_the_commit_is_woken_by_the_others_poll() -> None:
    log = UpdateLog(lambda: [])
    for name in "ab":
        log.since(log.epoch, 0, 0, health, name, 0)
    log.append("part")
    assert log.since(log.epoch, 0, 0, health, "a", 0).updates == ["part"]
    assert log.since(log.epoch, 0, 0, health, "b", 0).updates == ["part"]
    threading.Timer(0.2, log.since, args=(log.epoch, 1, 0, health, "b", 0)).start()
    started = time.monotonic()
    batch = log.since(log.epoch, 1, 5.0, health, "a", 0)  # a holds the write; b's ack is to come
    assert batch.commit == 1 and batch.updates == [] and 0.15 < time.monotonic() - started < 2.0


def test_a_follower_that_stops_polling_holds_the_commit_back_for_a_bound_only() -> None:
    log = UpdateLog(lambda: [], absent_s=0.3)
    for name in "ab":
        log.since(log.epoch, 0, 0, health, name, 0)
    log.append("part")
    log.since(log.epoch, 0, 0, health, "a", 0)  # b was killed: it never polls again
    started = time.monotonic()
    batch = log.since(log.epoch, 1, 5.0, health, "a", 0)
    assert batch.commit == 1 and 0.2 < time.monotonic() - started < 2.0
    assert log.left_out == 1


def test_an_unnamed_follower_is_shown_everything_and_holds_nothing_back() -> None:
    log = UpdateLog(lambda: [])
    log.since(log.epoch, 0, 0, health, "a", 0)
    log.append("part")
    plain = log.since(log.epoch, 0, 0, health)
    assert plain.updates == ["part"] and plain.commit is None
    assert log.since(log.epoch, 1, 0, health, "a", 0).commit == 1  # a holds it: nobody else counts
